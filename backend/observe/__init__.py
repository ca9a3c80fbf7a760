"""What the console reads and does, as one interface with a live and a fake implementation."""

from backend.observe.base import Observer, ServiceHealth

__all__ = ["Observer", "ServiceHealth"]
