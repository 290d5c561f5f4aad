"""The GPU throughput benchmark's CPU version runs end to end (benchmarks/gpu_throughput.py; on a GPU
machine the same script measures the paper profile against the compute limit). Tiny options keep it to
a few seconds: slim VGG-16 at 64 px, 48 JPEGs, one warm-up and one timed step per figure."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_gpu_throughput_cpu_version_prints_its_ratio(tmp_path):
    command = [sys.executable, str(BENCHMARKS / "gpu_throughput.py"), "--cpu", "--steps", "1", "--warmup", "1",
               "--batch", "4", "--image-size", "64", "--images", "48", "--workers", "0",
               "--data", str(tmp_path / "data")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    report = f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    assert done.returncode == 0, report
    assert "cpu" in lines[0] and "CPU version" in lines[0], report   # the first line says what ran
    for figure in ("(a)", "(b)", "(c)", "(d)"):
        line = next((line for line in lines if line.startswith(figure)), "")
        assert re.search(r": [0-9.]+ images/s, [0-9.]+ of the limit", line), report
    assert re.fullmatch(r"ratio: \d+\.\d\d", lines[-1]), report
    # the JPEG folder went where --data put it, named by its class count
    assert (tmp_path / "data" / "6x8" / "CUB_200_2011" / "cub_layout.json").is_file()
