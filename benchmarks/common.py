"""Shared helpers for the CPU benchmarks: timing, the result row, the machine's description."""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One line of the table: a baseline and ours on the same work, measured in the same run."""

    benchmark: str
    size: str
    baseline: str
    baseline_value: float | None  # seconds per unit of work, or a rate when `unit` is a rate
    ours: str
    ours_value: float | None
    unit: str  # "s", "ms" (times: lower is better) or a rate such as "captions/s" (higher is better)
    check: str  # equivalence of the two outputs
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        if not self.baseline_value or not self.ours_value:
            return None
        if self.unit.endswith("/s"):
            return self.ours_value / self.baseline_value
        return self.baseline_value / self.ours_value


def timeit(fn, repeats: int = 5, warmup: int = 1, max_seconds: float | None = None):
    """(median seconds per call, last result). Stops repeating early once `max_seconds` have passed."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    gc.collect()
    began = time.perf_counter()
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        if max_seconds is not None and time.perf_counter() - began > max_seconds:
            break
    return statistics.median(times), result


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.0f} µs"
        if value < 1:
            return f"{value * 1e3:.1f} ms"
        return f"{value:.2f} s"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.2f} {unit}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:,.0f}×" if ratio >= 100 else f"{ratio:.1f}×"


def markdown_table(rows: list[Row]) -> str:
    header = ("benchmark", "size", "baseline", "baseline", "ECMC", "ECMC", "ECMC speed-up", "same result?")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = (r.benchmark, r.size, r.baseline, fmt_value(r.baseline_value, r.unit), r.ours,
                 fmt_value(r.ours_value, r.unit), fmt_ratio(r.speedup), r.check)
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def quick_main(run, description: str, argv=None):
    """The command line of a benchmark whose only option is --quick: print its table."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    print(markdown_table(run(quick=parser.parse_args(argv).quick)))


def _run(cmd) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def machine_description() -> dict:
    import torch

    try:
        import transformers

        transformers_version = transformers.__version__
    except Exception:  # pragma: no cover
        transformers_version = "not installed"
    lscpu = _run(["lscpu"])
    lscpu_head = "\n".join(lscpu.splitlines()[:10])
    model_name = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), platform.processor())
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        memory = f"{kib / 2**20:.0f} GiB"
    except Exception:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model_name,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory": memory,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers_version,
        "platform": platform.platform(),
        "lscpu_head": lscpu_head,
    }
