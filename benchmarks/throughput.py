"""Every model's training speed against the machine's own matmul peak.

    python benchmarks/throughput.py [MODEL ...] [--device auto]

First the reference: the best of several large matrix products (fp32, then bf16), in GFLOP/s.
Then each model's own train.py runs as it would for a user, but with FUNMNIST_THROUGHPUT set, so
that its first loop of batches measures a window of steps (`funmnist/throughput.py`): GFLOP per
step (matmuls and convolutions, forward and backward), steps/s, images/s (batches the loop hands
out), achieved GFLOP/s and the share of the step's wall time spent outside training. The figures
go to benchmarks/throughput.json under the device's kind (a CUDA run keeps the CPU's), from which
`python -m funmnist.readme` writes the README's table.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import funmnist as fm
from funmnist.cli import pick_device
from funmnist.run import provenance
from funmnist.throughput import ENV, WINDOW, clock

OUT = Path(__file__).with_suffix(".json")


def models() -> list[str]:
    return sorted(p.parent.name for p in fm.REPO_ROOT.glob("*/train.py"))


def product_seconds(device: torch.device, dtype: torch.dtype, n: int, count: int) -> list[float]:
    """The wall time of each of `count` n x n products, in turn."""
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    seconds = []
    for _ in range(count):
        start = clock(device)
        a @ b
        seconds.append(clock(device) - start)
    return seconds


def matmul_peak(device: torch.device, dtype: torch.dtype, largest: int, repeats: int = 10) -> tuple[float, int]:
    """GFLOP/s of the fastest of `repeats` n x n products (2 n^3 FLOPs each) after one warm-up, and n.

    n doubles from 256 while a product takes under 0.1 s, up to `largest`: a CPU without bf16
    hardware emulates it at a few GFLOP/s, and there the peak is taken at a smaller size in
    seconds rather than at the largest over many minutes.
    """
    n = 256
    while n < largest and min(product_seconds(device, dtype, n, 2)) < 0.1:
        n *= 2
    best = min(product_seconds(device, dtype, n, repeats + 1)[1:])
    return 2 * n**3 / best / 1e9, n


def measure(model: str, device: str) -> dict:
    """Run the model's script until its window is measured; its figures, or a one-line error."""
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "window.json"
        command = [sys.executable, str(fm.REPO_ROOT / model / "train.py"), "--device", device, "--out", tmp]
        command += ["--max-steps", str(WINDOW + 1)]
        done = subprocess.run(command, env={**os.environ, ENV: str(figures)}, capture_output=True, text=True)
        if done.returncode or not figures.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            fm.fail(f"{model}/train.py did not measure its window (exit {done.returncode}): {last}")
        return json.loads(figures.read_text())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", metavar="MODEL", help="model folders (default: every */train.py)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--out", type=Path, default=OUT, help="where the figures go")
    args = p.parse_args()
    if unknown := sorted(set(args.models) - set(models())):
        p.error(f"no {unknown[0]}/train.py; the models are {', '.join(models())}")
    device = pick_device(args.device)
    largest = 4096 if device.type == "cuda" else 2048
    peak, size = {}, {}
    for name, dtype in [("fp32", torch.float32), ("bf16", torch.bfloat16)]:
        peak[name], size[name] = matmul_peak(device, dtype, largest)
    print(f"{device}: matmul peak " + ", ".join(f"{peak[k]:.0f} GFLOP/s {k} ({size[k]} x {size[k]})" for k in peak))
    rows = {}
    for model in args.models or models():
        row = measure(model, device.type)
        row["peak_share"] = row["gflops"] / peak["fp32"]
        rows[model] = row
        print(
            f"{model:24s} {row['gflop_per_step']:7.2f} GFLOP/step {row['steps_per_s']:7.2f} steps/s"
            f" {row['images_per_s']:8.0f} images/s {row['gflops']:7.1f} GFLOP/s = {row['peak_share']:4.0%} of peak,"
            f" {row['outside_share']:4.0%} outside training"
        )
    record = json.loads(args.out.read_text()) if args.out.is_file() else {}
    kept = record.get(device.type, {}).get("models", {}) if args.models else {}
    record[device.type] = {
        **provenance(device),
        "threads": torch.get_num_threads(),
        "matmul_n": size,
        "peak_gflops": peak,
        "models": kept | rows,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
