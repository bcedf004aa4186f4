"""Greedy generation through the engine, for comparing its model code with `model.generate`."""

from __future__ import annotations

from typing import Any

from llmapi.engine.llm_engine import LLMEngine
from llmapi.engine.sampling_params import SamplingParams
from llmapi.types import ModelCode


def engine_greedy(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    max_tokens: int,
    *,
    max_prefill_tokens: int = 512,
    model_code: ModelCode = "auto",
) -> tuple[LLMEngine, list[list[int]]]:
    """All prompts in one engine: the first starts alone, the others join it at different positions."""
    engine = LLMEngine(
        model,
        tokenizer,
        vocab_size=len(tokenizer),
        eos_token_id=None,
        max_batch_size=len(prompts),
        max_prefill_tokens=max_prefill_tokens,
        model_code=model_code,
    )
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    out: dict[str, list[int]] = {str(i): [] for i in range(len(prompts))}

    def step() -> None:
        for output in engine.step():
            out[output.request_id].extend(output.token_ids)

    engine.add_request("0", prompts[0], params)
    step()
    step()
    for i, prompt in enumerate(prompts[1:], start=1):
        engine.add_request(str(i), prompt, params)
    while engine.has_unfinished():
        step()
    return engine, [out[str(i)] for i in range(len(prompts))]
