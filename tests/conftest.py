import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import funmnist as fm

REPO = Path(__file__).resolve().parent.parent
DATA_ROOT = Path(os.environ.get("FUNMNIST_DATA") or REPO / "data")
SMALL = ["--limit", "256", "--batch-size", "32", "--epochs", "2", "--device", "cpu"]  # a smoke run: 16 steps
QUALITY = {"fid", "fid_real", "is", "confident", "class_balance"}  # every generator's figures


@pytest.fixture(scope="session")
def mnist() -> fm.Split:
    return fm.load("MNIST", DATA_ROOT, torch.device("cpu"))


def run_script(script: str, *args) -> subprocess.CompletedProcess:
    """Run a script of the repo (a path, or a module of the package) as a user would, from elsewhere."""
    env = {**os.environ, "FUNMNIST_DATA": str(DATA_ROOT)}
    target = ["-m", script] if script.startswith("funmnist.") else [str(REPO / script)]
    command = [sys.executable, *target, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd="/", timeout=900)


def assert_one_line_error(result: subprocess.CompletedProcess, status: int, *phrases: str) -> None:
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def softplus(v: float) -> float:
    """log(1 + e^v) = -log sigma(-v): the cross-entropy of a logit -v against target 1, by hand."""
    return math.log1p(math.exp(v))


def load_script(path: str):
    """A model script as a module, to test its networks and losses (its main() does not run)."""
    spec = importlib.util.spec_from_file_location(path.replace("/", "_").removesuffix(".py"), REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
