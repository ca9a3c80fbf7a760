"""The store on one SQLite file with FTS5, split by role (see each module's docstring)."""

from backend.store.embedded.store import EmbeddedStore

__all__ = ["EmbeddedStore"]
