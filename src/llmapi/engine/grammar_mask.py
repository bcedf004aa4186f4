from __future__ import annotations

from collections.abc import Sequence as Items

import llguidance
import llguidance.torch
import torch

from llmapi.engine.grammar_matcher import GrammarMatcher

_BITS = torch.arange(32, dtype=torch.int32)


class GrammarMask:
    """Masks the logits of the constrained rows of a batch: tokens their grammar does not allow get -inf.

    Rows without a grammar are not touched. Several rows' masks are computed in parallel by llguidance's
    executor (native threads, without the interpreter lock).
    """

    def __init__(self) -> None:
        self._executor: llguidance.LLExecutor | None = None  # its threads start on first use

    def __call__(self, logits: torch.Tensor, grammars: Items[GrammarMatcher | None]) -> torch.Tensor:
        """`logits` [rows, vocab] masked (a new tensor); `grammars[i]` is row i's matcher, None if free."""
        rows = [i for i, grammar in enumerate(grammars) if grammar is not None]
        if not rows:
            return logits
        matchers = [grammar for grammar in grammars if grammar is not None]
        vocab = logits.shape[-1]  # the tokenizer may know more tokens than the model has logits for
        bitmask = torch.empty((len(rows), (matchers[0].vocab_size + 31) // 32), dtype=torch.int32)
        if len(matchers) == 1:
            matchers[0].fill(bitmask, 0)
        else:
            if self._executor is None:
                self._executor = llguidance.LLExecutor(num_threads=2)
            llguidance.torch.fill_next_token_bitmask_par(
                self._executor, [(m.llmatcher, i) for i, m in enumerate(matchers)], bitmask
            )
        allowed = ((bitmask.unsqueeze(-1) >> _BITS) & 1).view(len(rows), -1)[:, :vocab].bool()
        disallowed = torch.zeros(logits.shape, dtype=torch.bool)
        disallowed[torch.tensor(rows)] = ~allowed
        return logits.masked_fill(disallowed, float("-inf"))
