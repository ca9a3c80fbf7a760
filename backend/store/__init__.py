"""Log storage: one interface, with Elasticsearch as the real implementation."""

from backend.store.base import BulkOutcome, Rejection, Snapshot, Store, StoreUnavailable

__all__ = ["BulkOutcome", "Rejection", "Snapshot", "Store", "StoreUnavailable"]
