"""Rate limits, concurrency limits and token quotas: exact across instances with Redis, in-process without."""
