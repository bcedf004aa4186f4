from __future__ import annotations

from collections.abc import Sequence as Items

import torch

from llmapi.engine.sequence import Sequence


class Sampler:
    """Picks the next token of every row of a batch, each row with its own sampling parameters.

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

    def __call__(self, logits: torch.Tensor, seqs: Items[Sequence]) -> list[int]:
        if logits.shape[0] != len(seqs):
            raise ValueError(f"{logits.shape[0]} rows of logits for {len(seqs)} sequences")
        if any(seq.output_token_ids and _penalized(seq) for seq in seqs):
            logits = logits.to(torch.float32, copy=True)  # penalties are applied in place
            self._apply_penalties(logits, seqs)
        else:
            logits = logits.float()
        sampled = [i for i, seq in enumerate(seqs) if not seq.params.greedy]
        if len(sampled) == len(seqs):
            return [int(t) for t in self._sample(logits, list(seqs)).tolist()]
        next_ids = logits.argmax(dim=-1)
        if sampled:
            rows = torch.tensor(sampled)
            next_ids[rows] = self._sample(logits[rows], [seqs[i] for i in sampled])
        return [int(t) for t in next_ids.tolist()]

    def _apply_penalties(self, logits: torch.Tensor, seqs: Items[Sequence]) -> None:
        vocab = logits.shape[-1]
        for row, seq in enumerate(seqs):
            presence, frequency = seq.params.presence_penalty, seq.params.frequency_penalty
            if not seq.output_token_ids or not _penalized(seq):
                continue
            counts = torch.bincount(torch.tensor(seq.output_token_ids), minlength=vocab)[:vocab]
            logits[row] -= frequency * counts + presence * (counts > 0)

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


def _penalized(seq: Sequence) -> bool:
    return seq.params.presence_penalty != 0.0 or seq.params.frequency_penalty != 0.0
