"""A window of a run's own training steps, measured for benchmarks/throughput.py.

With FUNMNIST_THROUGHPUT=<file.json> in the environment, a run's first loop of batches takes
WARMUP steps, counts the FLOPs of the next COUNTED steps (matmuls and convolutions, forward and backward,
by `torch.utils.flop_counter`'s formulas), times the TIMED steps after those, writes the figures to the
file and exits with status 0. A step's time runs from one batch's indexing to the next's; its
training time from the moment the script gets the batch to the end of its last optimiser step,
so the rest (data, losses logged, frames, checkpoints, the progress bar) is the time outside.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

ENV = "FUNMNIST_THROUGHPUT"
WARMUP, COUNTED, TIMED = 3, 10, 20  # 10 and 20: whole cycles of the models that alternate 1:2 and 1:5
WINDOW = WARMUP + COUNTED + TIMED  # steps a run makes before it is measured (its --max-steps must be more)


def clock(device: torch.device) -> float:
    """perf_counter once the device's queued work is done (on CUDA a kernel returns before it runs)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def requested() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


class FlopCount(TorchDispatchMode):
    """FLOPs of the matmuls and convolutions run under it, by torch's own formulas (`flop_registry`).
    torch's FlopCounterMode also tracks modules, with backward hooks that break autograd.grad
    (WGAN-GP's gradient penalty), so this counts without them."""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if (formula := flop_registry.get(func._overloadpacket)) is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


class StepWindow:
    """Called by `Run.batches`: `tick(i)` as step i begins (before its batch is indexed), `handing(i)`
    as its batch goes to the script's body."""

    def __init__(self, path: Path, device: torch.device, batch_size: int, finish):
        self.path, self.device, self.batch_size, self.finish = path, device, batch_size, finish
        self.counter = FlopCount()
        self.flops = 0
        self.wall, self.train = [], []
        self.began = self.handed = self.optimised = None
        register_optimizer_step_post_hook(self._optimised)

    def _optimised(self, optimizer, args, kwargs) -> None:
        self.optimised = clock(self.device)

    def tick(self, i: int) -> None:
        now = clock(self.device)
        if i == WARMUP + COUNTED:
            self.counter.__exit__(None, None, None)
            self.flops = self.counter.flops
        elif WARMUP + COUNTED < i <= WINDOW:
            self.wall.append(now - self.began)
            trained = self.optimised is not None and self.optimised > self.handed
            self.train.append(self.optimised - self.handed if trained else 0.0)
        if i == WINDOW:
            self.write()
        self.began = clock(self.device)  # after the window's own bookkeeping

    def handing(self, i: int) -> None:
        if i == WARMUP:
            self.counter.__enter__()
        self.handed = clock(self.device)

    def write(self) -> None:
        wall = sum(self.wall)
        flop_per_step = self.flops / COUNTED
        record = {
            "batch_size": self.batch_size,
            "counted_steps": COUNTED,
            "timed_steps": TIMED,
            "gflop_per_step": flop_per_step / 1e9,
            "steps_per_s": TIMED / wall,
            "images_per_s": TIMED * self.batch_size / wall,
            "gflops": flop_per_step * TIMED / wall / 1e9,
            "outside_share": 1 - sum(self.train) / wall,
        }
        self.path.write_text(json.dumps(record, indent=2) + "\n")
        self.finish()
        print(f"{ENV}: {TIMED} steps measured, figures in {self.path}")
        sys.exit(0)
