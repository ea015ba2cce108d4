"""An exponential moving average of a generator's weights: the copy that is sampled and measured."""

from collections.abc import Callable

import torch
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim.swa_utils import AveragedModel

DECAY = 0.999


def moving_average(module: torch.nn.Module, decay: float = DECAY) -> AveragedModel:
    """A copy of `module` whose weights and BatchNorm statistics follow it by an exponential moving average.

    Call `.update_parameters(module)` after each of the module's optimiser steps, and
    `settle_batchnorm` before sampling. The n-th update weighs the module by
    1 - min(decay, (1 + n) / (10 + n)), so that the random initial weights are forgotten early in
    short runs. Averaging a GAN generator's iterates smooths the oscillation of the game (Yazici et
    al. 2019); ProGAN, BigGAN and StyleGAN show samples of such an average.
    """

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = n_averaged.item()
        weight = 1 - min(decay, (1 + n) / (10 + n))
        for a, c in zip(averaged, current, strict=True):
            if a.is_floating_point():
                a.lerp_(c, weight)
            else:  # BatchNorm's batch counter
                a.copy_(c)

    return AveragedModel(module, multi_avg_fn=update, use_buffers=True)


@torch.no_grad()
def settle_batchnorm(
    average: torch.nn.Module,
    noise: Callable[[int], torch.Tensor | tuple[torch.Tensor, ...]],
    samples: int = 10_000,
    batch_size: int = 500,
) -> None:
    """Set the BatchNorm statistics of an averaged generator to those of its own activations on fresh noise.

    `noise(n)` gives the generator's input for n samples, or a tuple of its inputs (noise and class).
    An average of running statistics is not the statistics of the averaged weights: in GAN's default
    run the last BatchNorm's input had 0.78 of its averaged running variance. BigGAN calls the
    recomputed ones standing statistics. (torch's `update_bn` does the same for one input only.)
    """
    norms = [m for m in average.modules() if isinstance(m, _BatchNorm)]
    momenta = [m.momentum for m in norms]
    mode = average.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: every batch counts alike
    average.train()
    for _ in range(samples // batch_size):
        inputs = noise(batch_size)
        average(*(inputs if isinstance(inputs, tuple) else (inputs,)))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    average.train(mode)
