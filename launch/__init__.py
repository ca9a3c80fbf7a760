"""The command line and the wiring of services: `logdeck` and the demo."""
