"""The heartbeat monitor: the node registry and NODE_DOWN detection (`logdeck monitor`)."""
