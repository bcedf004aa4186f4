"""llmapi: an OpenAI-compatible HTTP API in front of language models."""

__version__ = "0.1.0"
