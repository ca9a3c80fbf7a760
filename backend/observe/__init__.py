"""What the console reads and does, as one interface with a live and a fake implementation."""

from backend.observe.base import LogQuery, Observer, SearchResult, ServiceHealth

__all__ = ["LogQuery", "Observer", "SearchResult", "ServiceHealth"]
