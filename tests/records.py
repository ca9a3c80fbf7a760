"""Well-formed records for tests, one per level, as a service would send them."""

from __future__ import annotations

import uuid
from typing import Any

from backend.schemas import now_iso


def make_log(
    node_id: str = "test-node-01", level: str = "INFO", **overrides: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "log_id": str(uuid.uuid4()),
        "node_id": node_id,
        "log_level": level,
        "message_type": "LOG",
        "message": f"{level.lower()} message from {node_id}",
        "service_name": "TestService",
        "timestamp": now_iso(),
    }
    if level == "WARN":
        record |= {"response_time_ms": 420.0, "threshold_limit_ms": 300.0}
    if level in ("ERROR", "FATAL"):
        record["error_details"] = {"error_code": "TST-500", "error_message": "test failure"}
    return record | overrides
