"""Signed webhooks (Standard Webhooks): endpoints, an outbox of deliveries, the worker's sender."""
