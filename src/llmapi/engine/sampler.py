from __future__ import annotations

from array import array
from collections.abc import Sequence as Items
from dataclasses import dataclass
from math import inf

import torch

from llmapi.engine.grammar_mask import GrammarMask
from llmapi.engine.sequence import Sequence
from llmapi.engine.token_logprob import SampledLogprobs


@dataclass(frozen=True, slots=True)
class SamplerOutput:
    """The next token of every row, and the log probabilities of the rows that asked for them."""

    token_ids: list[int]
    logprobs: list[SampledLogprobs | None]


class Sampler:
    """Picks the next token of every row of a batch, each row with its own sampling parameters.

    Per row, in order: logit bias (added, OpenAI's semantics), penalties, the grammar's mask (constrained
    rows: disallowed tokens get -inf), then log probabilities are taken (for rows that ask), then temperature,
    top-k, top-p and the draw.
    Penalties follow OpenAI: logits -= presence * (count > 0) + frequency * count, over generated tokens.
    Sampling draws exponential noise (argmax of p / q, q ~ Exp(1), is a draw from p); a seeded sequence draws
    it from its own generator, so its sample does not depend on the rest of the batch. Greedy rows draw none.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        self.grammar_mask = GrammarMask()

    def __call__(self, logits: torch.Tensor, seqs: Items[Sequence]) -> list[int]:
        return self.sample(logits, seqs).token_ids

    def sample(self, logits: torch.Tensor, seqs: Items[Sequence]) -> SamplerOutput:
        if logits.shape[0] != len(seqs):
            raise ValueError(f"{logits.shape[0]} rows of logits for {len(seqs)} sequences")
        logits = self._adjusted(logits, seqs)
        if any(seq.grammar is not None for seq in seqs):
            logits = self.grammar_mask(logits, [seq.grammar for seq in seqs])
        sampled = [i for i, seq in enumerate(seqs) if not seq.params.greedy]
        if len(sampled) == len(seqs):
            next_ids = self._sample(logits, list(seqs))
        else:
            next_ids = logits.argmax(dim=-1)
            if sampled:
                rows = torch.tensor(sampled)
                next_ids[rows] = self._sample(logits[rows], [seqs[i] for i in sampled])
        return SamplerOutput([int(t) for t in next_ids.tolist()], _logprobs(logits, next_ids, seqs))

    def _adjusted(self, logits: torch.Tensor, seqs: Items[Sequence]) -> torch.Tensor:
        """The logits in float32 with each row's bias and penalties (a copy only where a row has some)."""
        biased = any(seq.params.logit_bias for seq in seqs)
        penalized = any(seq.output_token_ids and _penalized(seq) for seq in seqs)
        if not (biased or penalized):
            return logits.float()
        logits = logits.to(torch.float32, copy=True)  # bias and penalties are applied in place
        if biased:
            self._apply_bias(logits, seqs)
        if penalized:
            self._apply_penalties(logits, seqs)
        return logits

    @staticmethod
    def _apply_bias(logits: torch.Tensor, seqs: Items[Sequence]) -> None:
        """Every row's bias in one indexed add."""
        rows, token_ids, biases = [], [], []
        for row, seq in enumerate(seqs):
            for token_id, bias in seq.params.logit_bias:
                rows.append(row)
                token_ids.append(token_id)
                biases.append(bias)
        logits.index_put_(
            (torch.tensor(rows), torch.tensor(token_ids)), torch.tensor(biases), accumulate=True
        )

    @staticmethod
    def _apply_penalties(logits: torch.Tensor, seqs: Items[Sequence]) -> None:
        """Every penalized row's token counts in one indexed add, the penalties in one update."""
        rows = [row for row, seq in enumerate(seqs) if seq.output_token_ids and _penalized(seq)]
        row_of_token, token_ids = array("q"), array("q")
        for i, row in enumerate(rows):
            output = seqs[row].output_token_ids
            row_of_token.extend([i] * len(output))
            token_ids.extend(output)
        counts = logits.new_zeros((len(rows), logits.shape[-1]))
        counts.index_put_(
            (torch.frombuffer(row_of_token, dtype=torch.long), torch.frombuffer(token_ids, dtype=torch.long)),
            torch.ones(len(token_ids)),
            accumulate=True,
        )
        frequency = torch.tensor([seqs[row].params.frequency_penalty for row in rows]).unsqueeze(1)
        presence = torch.tensor([seqs[row].params.presence_penalty for row in rows]).unsqueeze(1)
        penalties = frequency * counts + presence * (counts > 0)
        if len(rows) == len(seqs):
            logits -= penalties
        else:
            logits[torch.tensor(rows)] -= penalties

    def _sample(self, logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
        temperatures = torch.tensor([seq.params.temperature for seq in seqs]).unsqueeze(1)
        logits = logits / temperatures
        if any(seq.params.top_k > 0 or seq.params.top_p < 1.0 for seq in seqs):
            logits = self._truncate(logits, seqs)
        probs = torch.softmax(logits, dim=-1)
        uniform = torch.rand(probs.shape, generator=self.generator)
        for row, seq in enumerate(seqs):
            if seq.generator is not None:
                uniform[row] = torch.rand(probs.shape[-1], generator=seq.generator)
        noise = uniform.log_().neg_()  # Exp(1); several times faster than Tensor.exponential_ on CPU
        return (probs / noise).argmax(dim=-1)

    @staticmethod
    def _truncate(logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
        """Keep each row's top_k tokens, then the top_p nucleus of those; the likeliest token always stays."""
        vocab = logits.shape[-1]
        top_k = torch.tensor([min(seq.params.top_k or vocab, vocab) for seq in seqs]).unsqueeze(1)
        top_p = torch.tensor([seq.params.top_p for seq in seqs]).unsqueeze(1)
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        ranks = torch.arange(vocab).unsqueeze(0)
        sorted_logits = sorted_logits.masked_fill(ranks >= top_k, float("-inf"))
        sorted_probs = sorted_logits.softmax(dim=-1)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        outside_nucleus = mass_before >= top_p
        outside_nucleus[:, 0] = False
        return logits.scatter(-1, order, sorted_logits.masked_fill(outside_nucleus, float("-inf")))


def _logprobs(
    logits: torch.Tensor, next_ids: torch.Tensor, seqs: Items[Sequence]
) -> list[SampledLogprobs | None]:
    """log_softmax of the rows that ask (after bias and penalties, before temperature), the sampled token's
    entry and one top-k for all of them; rows that do not ask cost nothing."""
    asking = [i for i, seq in enumerate(seqs) if seq.params.logprobs is not None]
    found: list[SampledLogprobs | None] = [None] * len(seqs)
    if not asking:
        return found
    rows = torch.tensor(asking)
    logprobs = torch.log_softmax(logits[rows], dim=-1)
    chosen = logprobs.gather(1, next_ids[rows].unsqueeze(1)).squeeze(1).tolist()
    k = min(max(seqs[i].params.logprobs or 0 for i in asking), logprobs.shape[-1])
    top_values: list[list[float]] = [[] for _ in asking]
    top_ids: list[list[int]] = [[] for _ in asking]
    if k:
        values, ids = logprobs.topk(k, dim=-1)
        top_values, top_ids = values.tolist(), ids.tolist()
    for j, i in enumerate(asking):
        wanted = seqs[i].params.logprobs or 0
        possible = [
            (t, v) for t, v in zip(top_ids[j][:wanted], top_values[j][:wanted], strict=True) if v > -inf
        ]
        found[i] = SampledLogprobs(
            logprob=chosen[j],
            top_ids=tuple(t for t, _ in possible),
            top_logprobs=tuple(v for _, v in possible),
        )
    return found


def _penalized(seq: Sequence) -> bool:
    return seq.params.presence_penalty != 0.0 or seq.params.frequency_penalty != 0.0
