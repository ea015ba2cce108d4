"""Everything in Fun with MNIST that is not a model: data, flags, the run loop, figures, metrics."""

from .cli import REPO_ROOT, fail, parser
from .data import Split, load, random_shift
from .metrics import accuracy, generator_metrics, knn_accuracy
from .plots import plot_curves, save_gif, save_grid
from .run import Run, write_metrics

__all__ = [
    "REPO_ROOT",
    "Run",
    "Split",
    "accuracy",
    "fail",
    "generator_metrics",
    "knn_accuracy",
    "load",
    "parser",
    "plot_curves",
    "random_shift",
    "save_gif",
    "save_grid",
    "write_metrics",
]
