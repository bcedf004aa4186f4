"""Backends: where a model's work is done (in this process, or on a remote engine)."""
