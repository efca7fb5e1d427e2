"""Benchmarks that are tools, not the service: run them with `python -m bench.NAME`."""
