"""Prometheus metrics: request and generation metrics per process, database gauges at scrape."""
