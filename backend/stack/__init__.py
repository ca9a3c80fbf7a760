"""The local Kafka and Elasticsearch that `logdeck stack up` runs on 127.0.0.1.

Fault tests stop and restart single servers through the functions exported here.
"""

from backend.stack.elasticsearch import elasticsearch_ready, start_elasticsearch, stop_elasticsearch
from backend.stack.errors import StackError
from backend.stack.kafka import kafka_ready, start_kafka, stop_kafka

__all__ = [
    "StackError",
    "elasticsearch_ready",
    "kafka_ready",
    "start_elasticsearch",
    "start_kafka",
    "stop_elasticsearch",
    "stop_kafka",
]
