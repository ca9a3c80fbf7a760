"""Benchmarks of logdeck on the real Kafka and Elasticsearch of `logdeck stack up`.

Each figure is measured beside a baseline taken the same way on the same machine, so a
result reads as "how close to what the servers allow" rather than as a bare number that
means little on other hardware. Run `python -m bench.ingest`; see bench/README.md.
"""
