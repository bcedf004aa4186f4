"""Results of the engine benchmark: one dict, written as results.json, results.md and results.png."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


def new_results(*, dtype: str, threads: int, rounds: int, command: str, order: list[str]) -> dict[str, Any]:
    return {
        "meta": {
            "command": command,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": _cpu_model(),
            "cpu_flags": [flag for flag in _CPU_FLAGS if flag in _cpu_flags()],
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "versions": {name: metadata.version(name) for name in ("torch", "transformers", "openai")},
            "dtype": dtype,
            "threads": threads,
            "rounds": rounds,
            "load_average_before": os.getloadavg(),
        },
        "order": order,
        "models": {},
    }


def new_model_section(results: dict[str, Any], model: str) -> dict[str, Any]:
    meta = results["meta"]
    run = {"command": meta["command"], "date": meta["date"], "rounds": meta["rounds"], "dtype": meta["dtype"]}
    section: dict[str, Any] = {"run": run, "systems": {}, "health": {}, "notes": []}
    results["models"][model] = section
    return section


def keep_other_models(results: dict[str, Any]) -> None:
    """Carry over from the committed results.json the models this run left out (each section says which
    run measured it), so a run of one model does not erase the other's figures."""
    path = HERE / "results.json"
    if not path.is_file():
        return
    previous = json.loads(path.read_text()).get("models", {})
    for model, section in previous.items():
        if model not in results["models"] and "run" in section:
            results["models"][model] = section


def add_system(section: dict[str, Any], name: str, streams: int, rounds: list[dict[str, float]]) -> None:
    """Record a system's rounds at a concurrency; its headline numbers are the per-metric medians."""
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    short = sum(r.get("short_streams", 0) for r in rounds)
    if short:
        section["notes"].append(f"{name}, {streams} streams: {short} stream(s) ended before 128 tokens")
    section["systems"].setdefault(name, {})[str(streams)] = {"rounds": rounds, "median": median}


def write(results: dict[str, Any]) -> None:
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "results.md").write_text(markdown(results))
    plot(results, HERE / "results.png")


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# Engine benchmark: llmapi through its HTTP API, and its peers",
        "",
        f"`{meta['command']}` on {meta['date']}, {meta['cpu']} ({meta['cores']} cores; "
        f"{', '.join(meta['cpu_flags'])}), Python {meta['python']}, "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + f"; dtype {meta['dtype']}, {meta['threads']} threads. Load average (1, 5, 15 min) before: "
        + ", ".join(f"{x:.2f}" for x in meta["load_average_before"])
        + "; after: "
        + ", ".join(f"{x:.2f}" for x in meta.get("load_average_after", ()))
        + f"; the run took {results.get('duration_s', 0) / 60:.1f} min.",
        "",
        "Every system serves the same weights in the same dtype: llmapi's default model "
        "`smollm2-135m-instruct` (SmolLM2-135M-Instruct de-quantized from the Q4_1 GGUF that `llm-"
        "smollm2` ships; `transformers serve` gets the directory llmapi converts it to; llama.cpp the "
        "GGUF re-quantized to the same dtype) and the built-in `gpt2-124m-random` (GPT-2 small, random "
        "seeded weights, LM head cut to its tokenizer's 8,192 rows everywhere). Greedy, EOS off (llama.cpp: "
        "a "
        "-100 bias on the end tokens), 128 new tokens per stream, user messages of 24-32 tokens of real "
        "text (windows of the Python standard library's sources) in the model's chat template, new "
        "prompts each round, the same prompts for every system in a round. The openai SDK (`AsyncOpenAI`,"
        " streaming), all streams started at once, one warm-up round first; tok/s is completion tokens "
        "(usage; llama.cpp sends none in streams: content chunks) over the round's wall time; TTFT is the"
        " first non-empty content delta; ITL the gaps between content deltas, pooled over streams. One "
        "system runs at a time; the client shares the "
        f"{meta['cores']} cores with the server. Headline numbers: the median of {meta['rounds']} "
        "round(s) per metric; each round's figure is in results.json.",
    ]
    sections = _in_order(results["models"])
    if sections:
        default_model, section = sections[0]  # the goals are the default model's
        lines += ["", "## The issue's goals", "", _goals(section, default_model)]
    for model, section in sections:
        run = section["run"]
        lines += [
            "",
            f"## {model}",
            "",
            f"`{run['command']}` on {run['date']}, {run['dtype']}, {run['rounds']} round(s).",
        ]
        for streams in ("1", "16", "64"):
            table = _table(results["order"], section, streams)
            if table:
                lines += ["", f"### {streams} concurrent stream{'s' if streams != '1' else ''}", "", table]
        lines += ["", _details(section)]
    lines += ["", "![tokens/s and TTFT](results.png)", ""]
    return "\n".join(lines)


def _in_order(sections: dict[str, Any]) -> list[tuple[str, Any]]:
    from bench.engine.models import NAMES

    return sorted(sections.items(), key=lambda item: NAMES.index(item[0]) if item[0] in NAMES else len(NAMES))


def _goals(section: dict[str, Any], model: str) -> str:
    from bench.engine.run import LLAMA_CPP, LLMAPI, TS_CB

    rows = ["| goal | measured | |", "|---|---:|---|"]

    def ratio(streams: str, peer: str) -> float:
        return _median(section, LLMAPI, streams, "tokens_per_s") / _median(
            section, peer, streams, "tokens_per_s"
        )

    for streams, goal in (("16", 1.5), ("64", 1.5)):
        value = ratio(streams, TS_CB)
        rows.append(_goal_row(f"{model}, {streams} streams ≥ {goal}× {TS_CB}", value, value >= goal, "×"))
    value = ratio("1", LLAMA_CPP)
    rows.append(_goal_row(f"{model}, one stream ≥ 0.8× llama.cpp", value, value >= 0.8, "×"))
    ttft = _median(section, LLMAPI, "16", "ttft_p50_ms")
    rows.append(_goal_row("TTFT p50 under 16 streams < 300 ms", ttft, ttft < 300, " ms"))
    prefix = section.get("prefix_caching")
    if prefix:
        speedup = prefix["off"]["second_ttft_p50_ms"] / prefix["on"]["second_ttft_p50_ms"]
        rows.append(_goal_row("500-token shared prefix: first token ≥ 3× sooner", speedup, speedup >= 3, "×"))
    memory = section.get("memory")
    if memory:
        growth = memory["growth_mib"]
        label = f"memory flat over {memory['requests']:,} requests (goal: 1,000)"
        rows.append(_goal_row(label, growth, abs(growth) < 20, " MiB"))
    return "\n".join(rows)


def _goal_row(goal: str, value: float, met: bool, unit: str) -> str:
    shown = "n/a" if math.isnan(value) else f"{value:.2f}{unit}"
    return f"| {goal} | {shown} | {'met' if met else 'not met'} |"


def _details(section: dict[str, Any]) -> str:
    lines = []
    prefix = section.get("prefix_caching")
    if prefix:
        on, off = prefix["on"], prefix["off"]
        lines.append(
            f"- Prefix caching: a prompt whose first {on['prefix_tokens']} tokens (a system message) the "
            f"previous prompt had too gets its first token after {on['second_ttft_p50_ms']:.0f} ms (p50 of "
            f"{on['pairs']}); with prefix caching off, {off['second_ttft_p50_ms']:.0f} ms "
            f"({off['second_ttft_p50_ms'] / on['second_ttft_p50_ms']:.1f}× longer). The first prompt of each "
            f"pair: {on['first_ttft_p50_ms']:.0f} ms on, {off['first_ttft_p50_ms']:.0f} ms off."
        )
    if section.get("kv_cache"):
        lines.append(
            "- KV cache after the runs (/metrics): "
            + ", ".join(f"`{k}` {v:,.0f}" for k, v in section["kv_cache"].items())
        )
    for name, health in section["health"].items():
        lines.append(
            f"- {name}, polled every 100 ms during the measured rounds: p50 {health['p50_ms']:.1f} ms, "
            f"p99 {health['p99_ms']:.1f} ms, max {health['max_ms']:.1f} ms ({health['polls']} polls, "
            f"{health['failures']} failures)"
        )
    memory = section.get("memory")
    if memory:
        lines.append(
            f"- llmapi server RSS over {memory['requests']:,} sequential chat requests (max_tokens 8): "
            f"{memory['rss_before_mib']:.0f} MiB before, {memory['rss_after_mib']:.0f} MiB after, growth "
            f"{memory['growth_mib']:+.1f} MiB; samples (requests, MiB): "
            + ", ".join(f"{n}: {rss:.0f}" for n, rss in memory["samples"])
        )
    lines += [f"- {note}" for note in section["notes"]]
    return "\n".join(lines)


def _table(order: list[str], section: dict[str, Any], streams: str) -> str:
    rows = [
        "| system | tok/s | × llmapi | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms "
        "| tok/s per round |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    ours = _median(section, order[0], streams, "tokens_per_s")
    for name in order:
        run = section["systems"].get(name, {}).get(streams)
        if run is None:
            continue
        m = run["median"]
        cells = [f"{m['tokens_per_s']:.1f}", f"{m['tokens_per_s'] / ours:.2f}"]
        cells += [_ms(m.get(key)) for key in ("ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms")]
        cells.append(", ".join(f"{r['tokens_per_s']:.0f}" for r in run["rounds"]))
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows) if len(rows) > 2 else ""


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = _in_order(results["models"])
    fig, axes = plt.subplots(1, len(sections), figsize=(7 * len(sections), 6), squeeze=False)
    for axis, (model, section) in zip(axes[0], sections, strict=True):
        names = [n for n in results["order"] if n in section["systems"]]
        width = 0.8 / 3
        for index, streams in enumerate(("1", "16", "64")):
            values = [_median(section, n, streams, "tokens_per_s") for n in names]
            offset = (index - 1) * width
            bars = axis.bar(
                [i + offset for i in range(len(names))], values, width, label=f"{streams} streams"
            )
            axis.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.0f}" for v in values], fontsize=8)
        axis.set_xticks(range(len(names)), [_wrap(n) for n in names], fontsize=8)
        axis.set_title(f"{model}: tokens/s (higher is better)")
        axis.legend()
    meta = results["meta"]
    fig.suptitle(f"{meta['dtype']}, {meta['threads']} threads, {meta['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _median(section: dict[str, Any], name: str, streams: str, key: str) -> float:
    run = section["systems"].get(name, {}).get(streams)
    return float(run["median"][key]) if run and key in run["median"] else math.nan


def _ms(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _wrap(name: str) -> str:
    return name.replace(", ", ",\n").replace(" --", "\n--").replace(" (", "\n(")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()
