"""One training run: batches, progress, checkpoints with exact resume, and the files every run writes."""

from __future__ import annotations

import atexit
import json
import math
import os
import platform
import random
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .cli import command_line, fail, pick_device, prepare_out, seed_everything, writing
from .data import Split, epoch_permutation, load, load_usps
from .plots import plot_curves, save_gif, save_grid
from .throughput import StepWindow, requested

GIF_FRAMES = 24  # CONVENTIONS.md asks for at least 20, spread over the run
CHECKPOINT_SECONDS = 120  # besides every epoch's end and the run's end
# Flags that may change between a run and its --resume; any other change would not be the same run.
RESUMABLE_CHANGES = {"resume", "max_steps", "device", "data_root", "out"}
CHECKPOINT_KEYS = {"args", "step", "seconds", "losses", "epoch_log", "frames", "rng", "objects"}
LOCK_NAME = ".run.lock"  # in --out while a run uses it: the process id of that run
STOPS = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated (SIGTERM)", 143)}


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def hold(out: Path) -> Path:
    """Take `out` for this process with a lock file holding its id, released at exit.

    A lock of a live process stops this run; one left by a process that no longer runs (killed
    outright) is taken over, saying so. This process's own lock (a second Run in it) is kept.
    """
    lock = out / LOCK_NAME
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid == os.getpid():
                return lock
            if pid and running(pid):
                fail(
                    f"argument --out: {out} is in use by another run (process {pid}); wait for it or pick another --out"
                )
            print(
                f"{Path(sys.argv[0]).name}: taking over {lock}, left by process {pid}, which no longer runs",
                file=sys.stderr,
            )
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as file:
            file.write(f"{os.getpid()}\n")
        atexit.register(release, lock)
        return lock


def release(lock: Path) -> None:
    try:
        if lock.read_text().strip() == str(os.getpid()):
            lock.unlink()
    except OSError:
        pass


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple GPU (mps)"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{torch.get_num_threads()}-thread CPU ({cpu})"


def provenance(device: torch.device) -> dict:
    """What every metrics.json says of where its figures come from."""
    return {
        "command": command_line(),
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
    }


class Run:
    """Owns what is not the model: device, seed, output folder, the step loop, logs and checkpoints.

    A script makes one from its parsed flags, loads data, `track`s what must survive a restart,
    iterates `batches`, calls `log` once per step, and ends with `finish`.
    """

    def __init__(self, args):
        self.args = args
        self.name = args.model
        self.device = pick_device(args.device)
        seed_everything(args.seed)
        self.out = prepare_out(args.out)
        hold(self.out)
        self.checkpoint_path = self.out / "checkpoint.pt"
        self.step = 0  # optimiser steps (batches) done
        self.epoch = 0
        self.seconds = 0.0
        self.losses: dict[str, tuple[list[int], list[float]]] = {}
        self.epoch_log: list[dict] = []
        self.frames: list[str] = []
        self.epoch_done = False  # true while the body handles an epoch's last batch
        self.frame_due = False  # true while the body handles a step that the GIF wants a frame of
        self.n_train: int | None = None
        self._tracked: dict = {}
        self._rng_state = None
        self._bar = None
        self._stop_signal = None  # SIGINT or SIGTERM, once one has arrived
        self._window_file = requested()  # benchmarks/throughput.py measures this run's first loop
        if not args.resume:
            for stale in self.out.glob("step_*.png"):
                stale.unlink()

    # ---- data and schedule -------------------------------------------------------------
    def load_data(self, name: str = "MNIST", *, epoch: bool = True, framing: str = "full") -> Split:
        """A data set on the run's device (`framing`: USPS's, see `load_usps`).

        `epoch`: an epoch is a pass over this set's training images, which `batches` then indexes;
        a script of two domains loads the other with epoch=False.
        """
        if name == "USPS":
            data = load_usps(self.args.data_root, self.device, framing, self.args.limit)
        else:
            data = load(name, self.args.data_root, self.device, self.args.limit)
        if epoch:
            self.epoch_over(data.train_x)
        return data

    def epoch_over(self, images: torch.Tensor) -> None:
        """Make an epoch a pass over `images`, the tensor that `batches` will index."""
        self.n_train = len(images)
        if self.n_train < self.args.batch_size:
            fail(f"argument --batch-size: {self.args.batch_size} is more than the {self.n_train} training images")

    @property
    def steps_per_epoch(self) -> int:
        return self.n_train // self.args.batch_size

    @property
    def total_steps(self) -> int:
        """Steps of the full run, whatever --max-steps says (schedules depend on it, not on a stop)."""
        return self.args.epochs * self.steps_per_epoch

    @property
    def last_step(self) -> int:
        return min(self.total_steps, self.args.max_steps or self.total_steps)

    def linear_decay(self, *optimizers: torch.optim.Optimizer) -> list:
        """Schedulers (one per optimiser, stepped once a step) that keep the rate for the first half of
        the full run, then take it linearly to zero: CycleGAN's schedule."""
        half = max(self.total_steps // 2, 1)
        return [
            torch.optim.lr_scheduler.LambdaLR(o, lambda s: min(1.0, (self.total_steps - s) / half)) for o in optimizers
        ]

    def to_device(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move a module to the run's device in channels-last layout: oneDNN's fastest for convs (1.7x here)."""
        return module.to(self.device, memory_format=torch.channels_last)

    # ---- checkpoints ------------------------------------------------------------------
    def track(self, **objects) -> None:
        """Register what a checkpoint holds (modules, optimisers, schedulers); with --resume, load it."""
        self._tracked = objects
        if self.args.resume:
            self._load_checkpoint()

    def _arguments(self) -> dict:
        return {k: str(v) for k, v in vars(self.args).items()}

    def _save_checkpoint(self) -> None:
        rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
        numpy_state = np.random.get_state()
        rng["numpy"] = [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]]
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        if self.device.type == "mps":
            rng["mps"] = torch.mps.get_rng_state()
        state = {
            "args": self._arguments(),
            "step": self.step,
            "seconds": self.seconds,
            "losses": self.losses,
            "epoch_log": self.epoch_log,
            "frames": self.frames,
            "rng": rng,
            "objects": {k: v.state_dict() for k, v in self._tracked.items()},
        }
        tmp = self.checkpoint_path.with_suffix(".tmp")
        kept = "; the previous checkpoint stays whole" if self.checkpoint_path.is_file() else ""
        try:
            with writing(self.checkpoint_path, kept):
                torch.save(state, tmp)
                os.replace(tmp, self.checkpoint_path)  # atomic: a crash leaves the previous checkpoint whole
        finally:
            tmp.unlink(missing_ok=True)

    def _load_checkpoint(self) -> None:
        path = self.checkpoint_path
        if not path.is_file():
            fail(f"argument --resume: no checkpoint at {path}")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as e:  # a truncated or foreign file: say so in one line
            fail(f"{path}: not a readable checkpoint ({type(e).__name__})")
        if not isinstance(state, dict) or state.keys() != CHECKPOINT_KEYS:
            fail(f"{path}: not a checkpoint of a Fun with MNIST run")
        saved, now = state["args"], self._arguments()
        if saved["model"] != now["model"]:
            fail(f"{path}: a checkpoint of {saved['model']}, not of {now['model']}")
        for key in sorted(set(saved) | set(now)):
            if key not in RESUMABLE_CHANGES and saved.get(key) != now.get(key):
                flag = "--" + key.replace("_", "-")
                fail(f"argument {flag}: the checkpoint was made with {saved.get(key)}, not {now.get(key)}")
        for key, obj in self._tracked.items():
            obj.load_state_dict(state["objects"][key])
        self.step, self.seconds = state["step"], state["seconds"]
        self.losses = {k: (list(s), list(v)) for k, (s, v) in state["losses"].items()}
        self.epoch_log, self.frames = state["epoch_log"], state["frames"]
        self._rng_state = state["rng"]

    def _restore_rng(self) -> None:
        rng = self._rng_state
        if rng is None:
            return
        torch.set_rng_state(rng["torch"].cpu())
        random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in rng["python"]))
        kind, keys, *rest = rng["numpy"]
        np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), *rest))
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        if "mps" in rng and self.device.type == "mps":
            torch.mps.set_rng_state(rng["mps"].cpu())
        self._rng_state = None

    # ---- the loop ------------------------------------------------------------------------
    def _on_stop(self, signum, frame) -> None:
        """Ctrl-C or SIGTERM: stop after the current step and its checkpoint; a second one stops at once."""
        self._stop_signal = signal.Signals(signum)
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)

    def batches(self, *tensors: torch.Tensor):
        """Yield mini-batches (one tensor, or a tuple of them) until the run's last step.

        Each epoch indexes a seeded permutation (the last partial batch is dropped). A checkpoint
        is written after the body has handled an epoch's last batch, the run's last step, every
        few minutes, and on Ctrl-C or SIGTERM, which then stop the run cleanly (exit 130, 143).
        A resumed run whose checkpoint is already at its last step trains no more: the script
        measures it again, and the same random state gives the same figures.
        """
        batch_size, spe = self.args.batch_size, self.steps_per_epoch
        window, self._window_file = self._window_file, None
        # a measured window keeps the full run's frames (next to none in it), not a frame every step or two
        frames_over = self.total_steps if window else self.last_step
        frame_steps = {math.ceil(i * frames_over / GIF_FRAMES) for i in range(1, GIF_FRAMES + 1)}
        self._restore_rng()
        if self.args.resume and self.step >= self.last_step:
            print(
                f"{self.name}: the checkpoint is at step {self.step}, the run's last: measuring it again, no training"
            )
        main_thread = threading.current_thread() is threading.main_thread()
        if main_thread:
            previous_handlers = {sig: signal.signal(sig, self._on_stop) for sig in STOPS}
        self._bar = tqdm(
            total=self.last_step,
            initial=self.step,
            desc=self.name,
            dynamic_ncols=True,
            mininterval=0.5 if os.isatty(2) else 30,
        )
        order, order_epoch = None, None
        if window:
            window = StepWindow(window, self.device, batch_size, self._bar.close)
        start, base_seconds, last_save = time.perf_counter(), self.seconds, time.perf_counter()
        first_step = self.step
        try:
            while self.step < self.last_step:
                if window:
                    window.tick(self.step - first_step)
                self.epoch, index = divmod(self.step, spe)
                if order_epoch != self.epoch:
                    order, order_epoch = epoch_permutation(self.n_train, self.args.seed, self.epoch), self.epoch
                    order = order.to(self.device)
                picked = order[index * batch_size : (index + 1) * batch_size]
                self.step += 1
                self.epoch_done = index == spe - 1
                self.frame_due = self.step in frame_steps
                batch = tuple(t[picked] for t in tensors)
                if window:
                    window.handing(self.step - 1 - first_step)
                yield batch[0] if len(batch) == 1 else batch
                self._bar.update(1)
                now = time.perf_counter()
                self.seconds = base_seconds + now - start
                if (
                    self.epoch_done
                    or self.step == self.last_step
                    or self._stop_signal
                    or now - last_save > CHECKPOINT_SECONDS
                ):
                    self._save_checkpoint()
                    last_save = now
                if self._stop_signal:
                    self._bar.close()
                    what, status = STOPS[self._stop_signal]
                    fail(f"{what} at step {self.step}; checkpoint saved, continue with --resume", status=status)
        finally:
            if main_thread:
                for sig, handler in previous_handlers.items():
                    signal.signal(sig, handler)
        self._bar.close()
        self.epoch_done = self.frame_due = False

    def log(self, **losses) -> None:
        """Record this step's losses (tensors or floats); a non-finite one stops the run."""
        shown = {}
        for key, value in losses.items():
            value = value.item() if torch.is_tensor(value) else float(value)
            if not math.isfinite(value):
                if self._bar is not None:
                    self._bar.close()
                kept = (
                    f"the last good checkpoint is {self.checkpoint_path}"
                    if self.checkpoint_path.is_file()
                    else "no checkpoint was written yet"
                )
                fail(f"loss {key} is {value} at step {self.step}; stopped, {kept}", status=1)
            steps, values = self.losses.setdefault(key, ([], []))
            steps.append(self.step)
            values.append(value)
            shown[key] = f"{value:.4f}"
        if self._bar is not None:
            self._bar.set_postfix(shown, refresh=False)

    def log_epoch(self, **values) -> None:
        """Record per-epoch figures (accuracies...); kept in the checkpoint, shown on the bar."""
        self.epoch_log.append({"epoch": self.epoch + 1, **{k: float(v) for k, v in values.items()}})
        if self._bar is not None:
            self._bar.write(f"epoch {self.epoch + 1}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))

    def save_frame(self, images: torch.Tensor, nrow: int = 8) -> None:
        """A grid named by step; the frames become process.gif at the end."""
        name = f"step_{self.step:06d}.png"
        save_grid(images, self.out / name, nrow=nrow)
        self.frames.append(name)

    # ---- the end -------------------------------------------------------------------------
    def finish(self, **metrics) -> dict:
        """Write loss.png, process.gif (if frames were saved) and metrics.json; return the metrics."""
        if self.losses:
            plot_curves(self.out / "loss.png", self.losses, "step", "loss", title=self.name, smooth=True)
        if self.frames:
            save_gif([self.out / f for f in self.frames], self.out / "process.gif")
        record = {
            "model": self.name,
            **provenance(self.device),
            "epochs": self.args.epochs,
            "steps": self.step,
            "seconds": round(self.seconds, 1),
            "seed": self.args.seed,
            **metrics,
        }
        write_metrics(self.out, record)
        figures = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        print(f"{self.name}: {figures} after {self.step} steps in {self.seconds:.0f} s; outputs in {self.out}")
        return record


def write_metrics(out: Path, record: dict) -> None:
    path = out / "metrics.json"
    with writing(path):
        path.write_text(json.dumps(record, indent=2) + "\n")
