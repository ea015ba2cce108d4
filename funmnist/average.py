"""An exponential moving average of a generator's weights: the copy that is sampled and measured."""

from collections.abc import Callable

import torch
from torch.optim.swa_utils import AveragedModel, update_bn

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
    average: torch.nn.Module, noise: Callable[[int], torch.Tensor], samples: int = 10_000, batch_size: int = 500
) -> None:
    """Set the BatchNorm statistics of an averaged generator to those of its own activations on fresh noise.

    An average of running statistics is not the statistics of the averaged weights: in GAN's default
    run the last BatchNorm's input had 0.78 of its averaged running variance. BigGAN calls the
    recomputed ones standing statistics.
    """
    update_bn((noise(batch_size) for _ in range(samples // batch_size)), average)
