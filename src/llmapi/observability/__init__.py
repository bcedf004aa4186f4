"""Logging, metrics and tracing hooks."""
