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
_CPU_FLAGS = ("avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


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
        "systems": {},
        "health": {},
        "memory": None,
        "notes": [],
    }


def add_system(results: dict[str, Any], name: str, streams: int, rounds: list[dict[str, float]]) -> None:
    """Record a system's rounds at a concurrency; its headline numbers are the per-metric medians."""
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    short = sum(r.get("short_streams", 0) for r in rounds)
    if short:
        results["notes"].append(f"{name}, {streams} streams: {short} stream(s) ended before 128 tokens")
    results["systems"].setdefault(name, {})[str(streams)] = {"rounds": rounds, "median": median}


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
        "Model: the built-in `gpt2-124m-random` (GPT-2 small shape, random seeded weights), its LM head "
        "trimmed to the tokenizer's 8,192 rows in every system (llmapi's engine does; the in-process "
        "baselines slice the head as a view, `transformers serve` gets the model saved with "
        "`resize_token_embeddings(8192)`). "
        "Greedy, EOS off, 128 new tokens per request, seeded prompts of 24-32 tokens after the chat template "
        "(windows of the Python standard library's sources), new prompts each round, the same prompts for "
        "every system in a round. HTTP systems: the openai SDK (`AsyncOpenAI`, streaming, "
        "`stream_options.include_usage`), all streams started at once, one warm-up round first; tok/s is "
        "usage completion tokens over the round's wall time; TTFT is the first non-empty content delta; "
        "ITL the gaps between content deltas, pooled over streams. One system runs at a time; the client "
        f"shares the {meta['cores']} cores with the server. Headline numbers: the median of "
        f"{meta['rounds']} round(s) per metric.",
    ]
    sequential = _median(results, results["order"][0], "16", "tokens_per_s")
    for streams in ("16", "64"):
        lines += ["", f"## {streams} concurrent requests", "", _table(results, streams, sequential)]
    lines += ["", "## Health and memory", ""]
    for name, health in results["health"].items():
        lines.append(
            f"- {name}, polled every 100 ms during the measured rounds: p50 {health['p50_ms']:.1f} ms, "
            f"p99 {health['p99_ms']:.1f} ms, max {health['max_ms']:.1f} ms ({health['polls']} polls, "
            f"{health['failures']} failures; goal < 50 ms)"
        )
    memory = results["memory"]
    if memory:
        lines.append(
            f"- llmapi server RSS over {memory['requests']:,} sequential chat requests (max_tokens 8): "
            f"{memory['rss_before_mib']:.0f} MiB before, {memory['rss_after_mib']:.0f} MiB after, growth "
            f"{memory['growth_mib']:+.1f} MiB (goal: flat); samples (requests, MiB): "
            + ", ".join(f"{n}: {rss:.0f}" for n, rss in memory["samples"])
        )
    else:
        lines.append("- memory check skipped (`--skip-memory`)")
    if results["notes"]:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    lines += ["", "![tokens/s and TTFT](results.png)", ""]
    return "\n".join(lines)


def _table(results: dict[str, Any], streams: str, sequential: float) -> str:
    rows = [
        "| system | tok/s | × one at a time | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in results["order"]:
        run = results["systems"].get(name, {}).get(streams)
        if run is None:
            continue
        m = run["median"]
        cells = [f"{m['tokens_per_s']:.0f}", f"{m['tokens_per_s'] / sequential:.1f}"]
        cells += [_ms(m.get(key)) for key in ("ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms")]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in results["order"] if n in results["systems"]]
    http = [n for n in names if "ttft_p50_ms" in next(iter(results["systems"][n].values()))["median"]]
    fig, (tps, ttft) = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [3, 2]})
    for axis, systems, key, title in (
        (tps, names, "tokens_per_s", "aggregate tokens/s (higher is better)"),
        (ttft, http, "ttft_p50_ms", "time to first token p50, ms (lower is better)"),
    ):
        width = 0.38
        for offset, streams in ((-width / 2, "16"), (width / 2, "64")):
            values = [_median(results, n, streams, key) for n in systems]
            bars = axis.bar(
                [i + offset for i in range(len(systems))], values, width, label=f"{streams} requests"
            )
            axis.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.0f}" for v in values], fontsize=8)
        axis.set_xticks(range(len(systems)), [_wrap(n) for n in systems], fontsize=8)
        axis.set_title(title)
        axis.legend()
    meta = results["meta"]
    fig.suptitle(f"gpt2-124m-random, {meta['dtype']}, {meta['threads']} threads, {meta['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _median(results: dict[str, Any], name: str, streams: str, key: str) -> float:
    run = results["systems"].get(name, {}).get(streams)
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
