"""Response cache: canonical request keys; an in-memory LRU bounded in bytes, or Redis."""
