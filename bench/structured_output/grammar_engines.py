"""Grammar engines compared on the tokenizers llmapi serves: compile time, mask time, JSON-schema coverage.

    PYTHONPATH=/tmp/gbench .venv/bin/python -m bench.structured_output.grammar_engines \
        [--tokenizer NAME=DIR ...] [--out bench/structured_output/engines.json]

Candidates not in llmapi's dependencies are installed aside, without their dependencies (xgrammar declares
torch and triton, which must not touch llmapi's pinned CPU torch):
    .venv/bin/python -m pip install --no-deps --target /tmp/gbench \
        llguidance xgrammar apache-tvm-ffi outlines-core

Per tokenizer and engine: the compile time of each nested schema (no cache, median of 3); the time to compute
the next-token mask for one sequence, and for 16 sequences at once (each at its own point of its own document;
llguidance's LLExecutor and xgrammar's BatchGrammarMatcher fill in parallel, outlines-core in a loop), walking
each schema's example document token by token; and coverage: for each JSON-schema feature, whether the engine
refuses the schema, compiles it but lets a document that breaks the feature through to its end (silently
ignored), or enforces it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from bench.structured_output.schemas import COVERAGE, NESTED

BUILTIN_TOKENIZER = Path("src/llmapi/backends/local/assets/gpt2-124m-random")
BATCH = 16


@dataclass
class Engine:
    """One grammar engine behind four verbs."""

    name: str
    compile: Callable[[str], Any]  # schema JSON -> compiled grammar (raises when refused)
    matcher: Callable[[Any], Any]  # compiled grammar -> fresh matcher state
    fill: Callable[[list[Any], torch.Tensor], None]  # matchers -> rows 0..n-1 of an int32 bitmask
    advance: Callable[[Any, int], bool]  # consume one token; False when the grammar refuses it


def llguidance_engine(tokenizer: Any) -> Engine:
    import llguidance
    import llguidance.hf
    import llguidance.torch

    tok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=len(tokenizer))
    executor = llguidance.LLExecutor()

    def compile_(schema: str) -> Any:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema)
        error = llguidance.LLMatcher.validate_grammar(grammar, tok)
        if error:
            raise ValueError(error)
        matcher = llguidance.LLMatcher(tok, grammar, log_level=0)
        if matcher.is_error():
            raise ValueError(matcher.get_error())
        return grammar

    def fill(matchers: list[Any], bitmask: torch.Tensor) -> None:
        if len(matchers) == 1:
            llguidance.torch.fill_next_token_bitmask(matchers[0], bitmask, 0)
        else:
            llguidance.torch.fill_next_token_bitmask_par(
                executor, [(m, i) for i, m in enumerate(matchers)], bitmask
            )

    return Engine(
        "llguidance",
        compile_,
        lambda grammar: llguidance.LLMatcher(tok, grammar, log_level=0),
        fill,
        lambda m, t: bool(m.consume_token(t)),
    )


def xgrammar_engine(tokenizer: Any) -> Engine:
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))
    compiler = xgr.GrammarCompiler(info, cache_enabled=False)
    batch = xgr.BatchGrammarMatcher()

    def fill(matchers: list[Any], bitmask: torch.Tensor) -> None:
        if len(matchers) == 1:
            matchers[0].fill_next_token_bitmask(bitmask, 0)
        else:
            batch.batch_fill_next_token_bitmask(matchers, bitmask)

    return Engine(
        "xgrammar",
        lambda schema: compiler.compile_json_schema(schema, strict_mode=True),
        xgr.GrammarMatcher,
        fill,
        lambda m, t: bool(m.accept_token(t)),
    )


def outlines_core_engine(tokenizer: Any) -> Engine:
    from outlines_core import Guide, Index, Vocabulary
    from outlines_core.json_schema import build_regex_from_schema

    vocabulary = Vocabulary(tokenizer.eos_token_id, _byte_vocabulary(tokenizer))

    def fill(matchers: list[Any], bitmask: torch.Tensor) -> None:
        for row, guide in enumerate(matchers):
            target = bitmask[row]
            guide.write_mask_into(target.data_ptr(), target.numel(), target.element_size())

    def advance(guide: Any, token: int) -> bool:
        try:
            guide.advance(token)
        except ValueError:
            return False
        return True

    return Engine(
        "outlines-core",
        lambda schema: Index(build_regex_from_schema(schema), vocabulary),
        Guide,
        fill,
        advance,
    )


def _byte_vocabulary(tokenizer: Any) -> dict[bytes, list[int]]:
    """Token ids by their bytes (outlines-core wants bytes; byte-level BPE spells them in GPT-2's map)."""
    table = _gpt2_byte_decoder()
    vocabulary: dict[bytes, list[int]] = {}
    for token, token_id in tokenizer.get_vocab().items():
        if token_id == tokenizer.eos_token_id or token in tokenizer.all_special_tokens:
            continue
        spelt = bytes(table[c] for c in token) if all(c in table for c in token) else token.encode()
        vocabulary.setdefault(spelt, []).append(token_id)
    return vocabulary


def _gpt2_byte_decoder() -> dict[str, int]:
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    codes, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}


ENGINES = {
    "llguidance": llguidance_engine,
    "xgrammar": xgrammar_engine,
    "outlines-core": outlines_core_engine,
}


def compile_ms(engine: Engine, schema: str) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        engine.compile(schema)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def mask_us(engine: Engine, tokenizer: Any, compiled: list[tuple[Any, list[int]]], batch: int) -> float:
    """Mean time to fill the masks of `batch` sequences for one step, walking the example documents."""
    bitmask = torch.full((batch, (len(tokenizer) + 31) // 32), -1, dtype=torch.int32)
    lanes = [(compiled[i % len(compiled)]) for i in range(batch)]
    matchers = [engine.matcher(grammar) for grammar, _ in lanes]
    steps = min(len(tokens) for _, tokens in lanes)
    total = 0.0
    for step in range(steps):
        started = time.perf_counter()
        engine.fill(matchers, bitmask)
        total += time.perf_counter() - started
        for matcher, (_, tokens) in zip(matchers, lanes, strict=True):
            if not engine.advance(matcher, tokens[step]):
                raise RuntimeError(f"{engine.name} refused token {step} of a valid document")
    return total / steps * 1e6


def coverage(engine: Engine, tokenizer: Any) -> dict[str, str]:
    verdicts = {}
    for feature, (schema, breaking) in COVERAGE.items():
        try:
            grammar = engine.compile(json.dumps(schema))
        except Exception:
            verdicts[feature] = "refused"
            continue
        matcher = engine.matcher(grammar)
        tokens = tokenizer.encode(breaking, add_special_tokens=False)
        # The whole document, then the end: "3" may begin "30", so only an accepted end lets it through.
        accepted = all(engine.advance(matcher, t) for t in [*tokens, tokenizer.eos_token_id])
        verdicts[feature] = "ignored" if accepted else "enforced"
    return verdicts


def measure(name: str, directory: Path, engines: list[str]) -> dict[str, Any]:
    tokenizer = AutoTokenizer.from_pretrained(directory)
    result: dict[str, Any] = {"tokenizer": name, "vocab": len(tokenizer), "engines": {}}
    for engine_name in engines:
        try:
            started = time.perf_counter()
            engine = ENGINES[engine_name](tokenizer)
            setup_ms = (time.perf_counter() - started) * 1000
        except ImportError as exc:
            print(f"{engine_name}: not installed ({exc})")
            continue
        compiled = []
        compile_times = {}
        for schema_name, (schema, example) in NESTED.items():
            text = json.dumps(schema)
            compile_times[schema_name] = compile_ms(engine, text)
            compiled.append((engine.compile(text), tokenizer.encode(example, add_special_tokens=False)))
        figures = {
            "tokenizer_setup_ms": setup_ms,
            "compile_ms": compile_times,
            "mask_us_1": mask_us(engine, tokenizer, compiled, 1),
            f"mask_us_{BATCH}": mask_us(engine, tokenizer, compiled, BATCH),
            "coverage": coverage(engine, tokenizer),
        }
        result["engines"][engine_name] = figures
        print(name, engine_name, json.dumps(figures))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokenizer", action="append", default=[], help="NAME=DIR of a tokenizer to add")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("engines.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    tokenizers = {"builtin gpt2-124m-random (8,192)": BUILTIN_TOKENIZER}
    for item in args.tokenizer:
        name, _, directory = item.partition("=")
        tokenizers[name] = Path(directory)
    results = [measure(name, path, args.engines.split(",")) for name, path in tokenizers.items()]
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
