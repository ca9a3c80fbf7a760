"""The Fluentd Forward protocol v1: decoding what clients send, and an acknowledging sender."""
