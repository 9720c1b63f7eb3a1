"""The benchmark scripts stay runnable: the CPU suite's quick mode and the GPU script at tiny shapes
(on CPU). They measure; nothing here asserts a speed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(*args, timeout=600):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_cpu_benchmarks_quick(tmp_path):
    out = run("-m", "benchmarks.run_cpu", "--quick", "--json", str(tmp_path / "cpu.json"))
    assert "speed-up" in out
    rows = json.loads((tmp_path / "cpu.json").read_text())
    assert rows


def test_gpu_script_at_tiny_shapes_on_cpu(tmp_path):
    out = run("-m", "benchmarks.gpu", "--tiny", "--out", str(tmp_path))
    assert (tmp_path / "gpu-bench.json").is_file() and "stage" in out
