from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import llguidance
import llguidance.hf

from llmapi.engine.constraint import Constraint, grammar_of
from llmapi.engine.errors import ConstraintError
from llmapi.engine.grammar_matcher import GrammarMatcher

MAX_CACHED_GRAMMARS = 128


class GrammarCompiler:
    """Compiles constraints against one model's tokenizer, once per source, and hands each sequence its own
    matcher (a copy of the compiled one).

    Building llguidance's view of the tokenizer takes 0.3-2 s and compiling a grammar about a millisecond
    (a large schema, more): `prepare` does both and belongs off the event loop and off the engine thread;
    `matcher` is then a cache hit. Thread-safe.
    """

    def __init__(self, tokenizer: Any, *, vocab_size: int, eos_token_id: int | None) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._eos_token_id = eos_token_id
        self._lltokenizer: llguidance.LLTokenizer | None = None
        self._compiled: OrderedDict[Constraint, llguidance.LLMatcher] = OrderedDict()
        self._lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def is_prepared(self, constraint: Constraint) -> bool:
        with self._lock:
            return constraint in self._compiled

    def prepare(self, constraint: Constraint) -> None:
        """Compile `constraint` unless it is cached (ConstraintError if it cannot be enforced)."""
        if self.is_prepared(constraint):
            return
        grammar = grammar_of(constraint)
        compiled = llguidance.LLMatcher(self._llguidance_tokenizer(), grammar, log_level=0)
        if compiled.is_error():
            raise ConstraintError(compiled.get_error())
        with self._lock:
            self._compiled[constraint] = compiled
            while len(self._compiled) > MAX_CACHED_GRAMMARS:
                self._compiled.popitem(last=False)

    def matcher(self, constraint: Constraint) -> GrammarMatcher:
        """A fresh matcher at the start of the grammar."""
        with self._lock:
            compiled = self._compiled.get(constraint)
            if compiled is not None:
                self._compiled.move_to_end(constraint)
        if compiled is None:
            self.prepare(constraint)
            return self.matcher(constraint)
        return GrammarMatcher(compiled.deep_copy(), vocab_size=self._vocab_size)

    def _llguidance_tokenizer(self) -> llguidance.LLTokenizer:
        with self._tokenizer_lock:
            if self._lltokenizer is None:
                try:
                    self._lltokenizer = llguidance.hf.from_tokenizer(
                        self._tokenizer, n_vocab=self._vocab_size, eos_token=self._eos_token_id
                    )
                except (ValueError, TypeError) as exc:
                    raise ConstraintError(f"this model's tokenizer cannot be constrained: {exc}") from exc
            return self._lltokenizer
