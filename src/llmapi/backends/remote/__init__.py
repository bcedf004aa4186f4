"""Models served by another process over HTTP: any OpenAI-compatible server."""
