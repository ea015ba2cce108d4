"""Figures every script writes: image grids, the training GIF and curves."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import matplotlib

matplotlib.use("Agg")  # headless: scripts only write files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision.utils as vutils  # noqa: E402

from .cli import writing  # noqa: E402


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> None:
    """Images in [0, 1] as one PNG grid."""
    with writing(path):
        vutils.save_image(images.detach().float().cpu().clamp(0, 1), path, nrow=nrow, padding=2, pad_value=0.5)


def interleaved_rows(*groups: torch.Tensor, per_row: int = 8) -> torch.Tensor:
    """Equal-length image groups as one grid's rows: each group's first `per_row`, then each one's next..."""
    return torch.cat([g[i : i + per_row] for i in range(0, len(groups[0]), per_row) for g in groups])


def save_gif(frames: list[Path], path: Path, seconds_per_frame: float = 0.2) -> None:
    """The saved grids as one GIF, holding the last frame a little longer."""
    images = [iio.imread(f) for f in frames]
    durations = [seconds_per_frame * 1000] * (len(images) - 1) + [1500]
    with writing(path):
        iio.imwrite(path, np.stack(images), duration=durations, loop=0)


def plot_curves(
    path: Path,
    curves: dict[str, tuple[list[float], list[float]]],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    smooth: bool = False,
    logx: bool = False,
) -> None:
    """One line per named (x, y) curve; `smooth` draws the raw values faintly under a moving mean."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, (xs, ys)) in enumerate(curves.items()):
        color = f"C{i}"
        if smooth and len(ys) > 20:
            window = max(len(ys) // 50, 2)
            kernel = np.ones(window) / window
            ax.plot(xs, ys, color=color, alpha=0.25, linewidth=0.5)
            ax.plot(xs[window - 1 :], np.convolve(ys, kernel, mode="valid"), color=color, label=name)
        else:
            ax.plot(xs, ys, color=color, label=name, marker="o" if len(xs) < 30 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with writing(path):
        fig.savefig(path, dpi=100)
    plt.close(fig)


def scatter_codes(
    path: Path, codes: np.ndarray, labels: np.ndarray, title: str, outlines: list[np.ndarray] | None = None
) -> None:
    """2-d codes coloured by digit, with a legend; `outlines` are closed curves (a prior's support) drawn on top."""
    fig, ax = plt.subplots(figsize=(6.5, 6))
    for digit in range(10):
        at = labels == digit
        ax.scatter(codes[at, 0], codes[at, 1], s=2, color=plt.cm.tab10(digit), label=str(digit), alpha=0.6)
    for curve in outlines or []:
        ax.plot(*np.vstack([curve, curve[:1]]).T, color="black", linewidth=1)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(markerscale=5, loc="center left", bbox_to_anchor=(1, 0.5), title="digit")
    fig.tight_layout()
    with writing(path):
        fig.savefig(path, dpi=100)
    plt.close(fig)
