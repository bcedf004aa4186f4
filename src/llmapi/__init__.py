"""llmapi: an OpenAI-compatible HTTP API in front of language models."""
