"""Log storage: one interface, on Elasticsearch or on an embedded SQLite file."""

from backend.store.base import BulkOutcome, Rejection, Snapshot, Store, StoreUnavailable

__all__ = ["BulkOutcome", "Rejection", "Snapshot", "Store", "StoreUnavailable"]
