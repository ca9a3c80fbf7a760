"""Log storage: one interface, with Elasticsearch as the real implementation."""

from backend.store.base import BulkOutcome, NodeUpdate, Rejection, Store, StoreUnavailable

__all__ = ["BulkOutcome", "NodeUpdate", "Rejection", "Store", "StoreUnavailable"]
