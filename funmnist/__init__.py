"""Everything in Fun with MNIST that is not a model: data, flags, the run loop, figures, metrics."""

from .cli import REPO_ROOT, fail, fraction, non_negative_int, parser, positive_float, positive_int
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
    "fraction",
    "generator_metrics",
    "knn_accuracy",
    "load",
    "non_negative_int",
    "parser",
    "plot_curves",
    "positive_float",
    "positive_int",
    "random_shift",
    "save_gif",
    "save_grid",
    "write_metrics",
]
