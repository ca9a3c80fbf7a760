"""Notifications: alerts delivered to the receivers on call teams already run.

`config` reads the TOML file of receivers and routes, `routing` picks the receivers of an
alert, `ledger` decides what is due (firing, repeated, resolved) from the alerts and what
was sent, the receiver modules (`alertmanager`, `webhook`, `slack`, `email`) speak each
receiver's format, `gate` paces and backs off each receiver, and `service` runs it all
as consumer group `notifier`.
"""
