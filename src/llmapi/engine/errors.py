"""What the engine refuses, in its own words. It knows nothing of HTTP: the backend that drives it
(llmapi.backends.local.text) tells clients."""

from __future__ import annotations


class EngineError(Exception):
    """A request the engine refuses on purpose (anything else it raises is a bug)."""


class EngineOverloadedError(EngineError):
    """Every batch slot is taken and the waiting queue is full: retry shortly."""

    def __init__(self, max_waiting: int) -> None:
        super().__init__(f"the engine is full: {max_waiting} requests are already waiting")
        self.max_waiting = max_waiting


class EngineStoppedError(EngineError):
    """The engine is not running: not started yet, or shutting down (requests in flight end with this)."""

    def __init__(self, *, shutting_down: bool) -> None:
        super().__init__("the engine is shutting down" if shutting_down else "the engine is not running")
        self.shutting_down = shutting_down


class PromptTooLongError(EngineError):
    """The prompt fills the model's context, leaving no room to generate a token."""

    def __init__(self, prompt_tokens: int, max_model_len: int) -> None:
        super().__init__(
            f"the prompt has {prompt_tokens} tokens and the model's context is {max_model_len}: "
            "no room is left to generate"
        )
        self.prompt_tokens = prompt_tokens
        self.max_model_len = max_model_len


class ConstraintError(EngineError):
    """A grammar (JSON schema or Lark) the engine cannot enforce: invalid, or using what it lacks."""
