"""Command-line plumbing shared by every script: flags, one-line errors, device and seed."""

from __future__ import annotations

import argparse
import math
import os
import random
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


def fail(message: str, status: int = 2) -> None:
    """Stop with one line on stderr, as argparse does for a bad flag: no traceback."""
    print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
    raise SystemExit(status)


@contextmanager
def writing(path: Path, after: str = ""):
    """A failed write of `path` (a full disk, a folder removed mid-run) ends in one line and exit status 1."""
    try:
        yield
    except OSError as e:
        fail(f"{path}: cannot be written ({e.strerror or e}){after}", status=1)


class Parser(argparse.ArgumentParser):
    samples: Path  # <folder>/samples/, where outputs go unless --out says otherwise
    subfolder = None  # args -> name of the subfolder of samples/ for a variant's run, or None

    def error(self, message: str) -> None:  # argparse prints usage too; we keep to one line
        fail(message)

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if parsed.out is None:
            out = self.samples / self.subfolder(parsed) if self.subfolder else self.samples
            # another seed's run goes beside the committed one (seed 0's), not over it
            parsed.out = out / f"seed{parsed.seed}" if parsed.seed else out
        return parsed


def checked(convert, accept, expected: str):
    """An argparse type: `convert` the text, and refuse what `accept` rejects, naming what was `expected`."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    return parse


positive_int = checked(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = checked(float, lambda v: 0 < v < math.inf, "a positive number")
non_negative_float = checked(float, lambda v: 0 <= v < math.inf, "a number >= 0")
fraction = checked(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
unit_interval = checked(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def default_data_root() -> Path:
    return Path(os.environ.get("FUNMNIST_DATA") or REPO_ROOT / "data")


def parser(
    script: str,
    description: str,
    *,
    epochs: int | None = None,
    batch_size: int = 64,
    lr: float | None = None,
    out: str | Path | None = None,
    name: str | None = None,
    training: bool = True,
    subfolder=None,
) -> Parser:
    """The flags of CONVENTIONS.md, with the script's defaults; a script adds its own flags.

    `name` (for metrics.json) and `out` default to the script's folder name and `<folder>/samples/`.

    `training=False` leaves out the flags that only a training loop has (for misc/ plots).
    `subfolder(args)` names a variant's own folder under samples/ (AE's "2_dim", AAE's "fit_donut");
    a seed other than 0 writes to seed<N>/ below that.
    """
    folder = Path(script).resolve().parent
    p = Parser(description=description)
    p.samples, p.subfolder = Path(out) if out else folder / "samples", subfolder
    if training:
        p.add_argument("--epochs", type=positive_int, default=epochs, help="passes over the training data")
        p.add_argument("--batch-size", type=positive_int, default=batch_size, help="mini-batch size")
        if lr is not None:
            p.add_argument("--lr", type=positive_float, default=lr, help="learning rate")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seeds Python, NumPy and torch")
    if training:
        p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    p.add_argument(
        "--data-root",
        type=Path,
        default=default_data_root(),
        help="folder holding MNIST/raw/ (default: $FUNMNIST_DATA, else data/ at the repo root)",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <folder>/samples/...)")
    if training:
        p.add_argument("--max-steps", type=positive_int, default=None, help="stop after N optimiser steps")
        p.add_argument("--limit", type=positive_int, default=None, help="use only the first N training images")
        p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    else:
        p.add_argument("--limit", type=positive_int, default=None, help="use only the first N test images")
    p.set_defaults(model=name or folder.name)
    return p


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available[name]:
        fail(f"argument --device: {name} is not available on this machine")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Same seed and device, same run: seed every generator and ask CUDA for deterministic kernels."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def prepare_out(path: Path) -> Path:
    """Create the output folder and prove it is writable before any work is done."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        fail(f"argument --out: cannot write to {path}: {e.strerror or e}")
    return path


def command_line() -> str:
    """The command as a user would type it from the repo root."""
    script = Path(sys.argv[0]).resolve()
    if script.parent == REPO_ROOT / "funmnist":
        return shlex.join(["python", "-m", f"funmnist.{script.stem}", *sys.argv[1:]])
    if script.is_relative_to(REPO_ROOT):
        script = script.relative_to(REPO_ROOT)
    return shlex.join(["python", str(script), *sys.argv[1:]])
