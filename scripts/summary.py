"""Prints what the pipeline stored: logs by level, the node registry and the alerts."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from backend.config import Settings


def main() -> None:
    settings = Settings.from_env()
    es = Elasticsearch(settings.elasticsearch)
    indices = settings.indices
    es.indices.refresh(index=f"{settings.namespace}-*", allow_no_indices=True)
    logs = es.search(
        index=indices.logs_pattern,
        size=0,
        aggs={"levels": {"terms": {"field": "log_level"}}},
        allow_no_indices=True,
    )
    print(f"logs in Elasticsearch: {logs['hits']['total']['value']}")
    for bucket in logs["aggregations"]["levels"]["buckets"]:
        print(f"  {bucket['key']:<6} {bucket['doc_count']}")
    nodes = es.search(index=indices.nodes, size=100, sort=[{"node_id": "asc"}])
    print("nodes:")
    for hit in nodes["hits"]["hits"]:
        node = hit["_source"]
        print(f"  {node['node_id']:<16} {node['service_name'] or '?':<20} {node['status']}")
    alerts = es.search(index=indices.alerts, size=20, sort=[{"last_seen": "desc"}])
    print("alerts:")
    for hit in alerts["hits"]["hits"]:
        alert = hit["_source"]
        count = f"x{alert['count']}"
        print(f"  {alert['severity']:<8} {alert['state']:<8} {count:<6} {alert['summary']}")


if __name__ == "__main__":
    main()
