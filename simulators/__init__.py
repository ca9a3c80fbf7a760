"""Simulated microservice nodes that register, log and heartbeat, with fault injection.

`traffic` makes the content, `node` is one node (its own process), `fleet` runs many,
and `cli` is `logdeck simulate`.
"""
