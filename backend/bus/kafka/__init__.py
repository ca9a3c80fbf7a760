"""The bus on Apache Kafka, through aiokafka.

Producers are idempotent with acks=all, so a record the broker acknowledged is on every
in-sync replica and a retried send never duplicates it. Consumers never auto-commit: a
service commits only after its own work on the records is done.
"""
