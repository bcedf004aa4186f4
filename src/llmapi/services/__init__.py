"""Use cases, one module per resource: wire request in, backend call, wire response out."""
