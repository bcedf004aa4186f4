from __future__ import annotations

from collections import Counter
from collections.abc import Sequence as TokenIds

import pytest
import torch

from llmapi.engine.sampler import Sampler
from llmapi.engine.sampling_params import SamplingParams
from llmapi.engine.sequence import Sequence


class CharDecoder:
    def decode(self, token_ids: TokenIds[int], *, skip_special_tokens: bool = False) -> str:
        return "".join(chr(97 + t % 26) for t in token_ids)


def seq(outputs: TokenIds[int] = (), **params: object) -> Sequence:
    s = Sequence("r", [1], SamplingParams(max_tokens=100, **params), decoder=CharDecoder(), eos_token_id=None)  # type: ignore[arg-type]
    s.output_token_ids.extend(outputs)
    return s


def draw(logits: list[float], n: int, **params: object) -> Counter[int]:
    """n independent samples: one batch of n rows with the same logits."""
    seqs = [seq(**params) for _ in range(n)]
    return Counter(Sampler(seed=0)(torch.tensor([logits] * n), seqs))


def test_greedy_rows_take_the_argmax_whatever_else_is_in_the_batch() -> None:
    logits = torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 0.0], [0.0, 0.0, 9.0]])
    seqs = [seq(temperature=0.0), seq(temperature=1.5), seq(top_k=1)]
    for _ in range(20):
        picked = Sampler()(logits, seqs)
        assert (picked[0], picked[2]) == (1, 2)


def test_top_k_keeps_only_the_k_likeliest_tokens() -> None:
    counts = draw([3.0, 2.9, 2.8, 2.7], 400, top_k=2)
    assert set(counts) == {0, 1}


def test_top_p_keeps_the_smallest_nucleus_reaching_p() -> None:
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log().tolist()
    assert set(draw(logits, 400, top_p=0.7)) == {0, 1}
    assert set(draw(logits, 400, top_p=0.85)) == {0, 1, 2}


def test_temperature_sharpens_the_distribution() -> None:
    logits = [1.0, 0.0]
    assert draw(logits, 1000, temperature=0.2)[0] > draw(logits, 1000, temperature=2.0)[0] + 200


def test_presence_penalty_is_subtracted_once_per_seen_token() -> None:
    logits = torch.tensor([[1.0, 0.9, 0.0]])
    assert Sampler()(logits, [seq([0], temperature=0.0)]) == [0]
    assert Sampler()(logits, [seq([0], temperature=0.0, presence_penalty=0.2)]) == [1]
    assert Sampler()(logits, [seq([0, 0, 0], temperature=0.0, presence_penalty=0.05)]) == [0]


def test_frequency_penalty_grows_with_the_count() -> None:
    logits = torch.tensor([[1.0, 0.9, 0.0]])
    assert Sampler()(logits, [seq([0], temperature=0.0, frequency_penalty=0.06)]) == [0]
    assert Sampler()(logits, [seq([0, 0], temperature=0.0, frequency_penalty=0.06)]) == [1]
    # A negative penalty favours repeating.
    assert Sampler()(logits, [seq([2], temperature=0.0, frequency_penalty=-2.0)]) == [2]


def test_penalties_change_the_sampled_distribution_as_specified() -> None:
    n = 4000
    seqs = [seq([0], presence_penalty=2.0) for _ in range(n)]
    counts = Counter(Sampler(seed=1)(torch.zeros(n, 4), seqs))
    expected = torch.softmax(torch.tensor([-2.0, 0.0, 0.0, 0.0]), dim=0)  # p(0) is about 0.043
    for token in range(4):
        assert abs(counts[token] / n - float(expected[token])) < 0.03


def test_a_seeded_request_samples_the_same_whatever_else_is_in_the_batch() -> None:
    logits = torch.randn(1, 50)

    def run(others: int, position: int) -> list[int]:
        target = seq(seed=1234)
        out = []
        for _ in range(10):
            batch = [seq(temperature=0.9) for _ in range(others)]
            batch.insert(position, target)
            picked = Sampler()(logits.expand(len(batch), -1), batch)[position]
            target.output_token_ids.append(picked)
            out.append(picked)
        return out

    alone = run(0, 0)
    assert run(5, 3) == alone
    assert run(2, 2) == alone
    assert len(set(alone)) > 1


def test_logprobs_are_the_log_softmax_after_bias_and_penalties_and_before_temperature() -> None:
    logits = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.0, 0.0, 3.0, 1.0]])
    asking = seq([1], temperature=1.7, logprobs=2, logit_bias=((3, 4.0),), presence_penalty=0.5)
    out = Sampler(seed=0).sample(logits, [asking, seq(temperature=0.0)])
    adjusted = logits[0] + torch.tensor([0.0, -0.5, 0.0, 4.0])
    expected = torch.log_softmax(adjusted, dim=-1)
    found = out.logprobs[0]
    assert found is not None
    assert found.logprob == pytest.approx(float(expected[out.token_ids[0]]), abs=1e-6)
    assert found.top_ids == (3, 1)
    assert found.top_logprobs == pytest.approx([float(expected[3]), float(expected[1])], abs=1e-6)
    assert out.logprobs[1] is None  # a row that did not ask gets none


def test_logprobs_zero_gives_the_sampled_token_only_and_greedy_rows_get_theirs() -> None:
    logits = torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 0.0]])
    out = Sampler().sample(logits, [seq(temperature=0.0, logprobs=0), seq(temperature=0.0, logprobs=3)])
    assert out.token_ids == [1, 0]
    first, second = out.logprobs
    assert first is not None and second is not None
    assert first.top_ids == ()
    assert first.logprob == pytest.approx(float(torch.log_softmax(logits[0], -1)[1]), abs=1e-6)
    assert second.top_ids[0] == 0 and sorted(second.top_ids) == [0, 1, 2]
    assert second.top_logprobs[0] == pytest.approx(second.logprob)


def test_impossible_tokens_are_left_out_of_the_top_logprobs() -> None:
    logits = torch.tensor([[0.0, float("-inf"), 1.0]])
    found = Sampler().sample(logits, [seq(temperature=0.0, logprobs=3)]).logprobs[0]
    assert found is not None and found.top_ids == (2, 0)


def test_logit_bias_changes_the_argmax_and_minus_100_bans_a_token() -> None:
    logits = torch.tensor([[1.0, 3.0, 0.2]])
    assert Sampler()(logits, [seq(temperature=0.0)]) == [1]
    assert Sampler()(logits, [seq(temperature=0.0, logit_bias=((2, 5.0),))]) == [2]
    assert Sampler()(logits, [seq(temperature=0.0, logit_bias=((1, -100.0),))]) == [0]
    banned = draw([1.0, 3.0, 0.2], 300, logit_bias=((1, -100.0), (2, -100.0)))
    assert set(banned) == {0}


def test_bias_of_one_row_leaves_the_other_rows_alone() -> None:
    logits = torch.tensor([[1.0, 3.0, 0.2]] * 2)
    picked = Sampler()(logits, [seq(temperature=0.0, logit_bias=((0, 100.0),)), seq(temperature=0.0)])
    assert picked == [0, 1]
