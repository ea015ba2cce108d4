"""Everything in Fun with MNIST that is not a model: data, flags, the run loop, figures, metrics."""

from .average import moving_average, settle_batchnorm
from .cli import REPO_ROOT, fail, fraction, non_negative_int, parser, positive_float, positive_int, unit_interval
from .data import Split, balanced_subset, flat_digits, load, pad_flat_digits, random_shift
from .metrics import (
    accuracy,
    code_acc,
    conditional_metrics,
    evaluating,
    generator_metrics,
    knn_accuracy,
    recon_mse,
)
from .plots import plot_curves, save_gif, save_grid, scatter_codes
from .run import Run, write_metrics

__all__ = [
    "REPO_ROOT",
    "Run",
    "Split",
    "accuracy",
    "balanced_subset",
    "code_acc",
    "conditional_metrics",
    "evaluating",
    "fail",
    "flat_digits",
    "fraction",
    "generator_metrics",
    "knn_accuracy",
    "load",
    "moving_average",
    "non_negative_int",
    "pad_flat_digits",
    "parser",
    "plot_curves",
    "positive_float",
    "positive_int",
    "random_shift",
    "recon_mse",
    "save_gif",
    "save_grid",
    "scatter_codes",
    "settle_batchnorm",
    "unit_interval",
    "write_metrics",
]
