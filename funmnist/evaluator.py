"""The fixed MNIST classifier that measures every generator (CONVENTIONS.md).

Trained by `python -m funmnist.train_evaluator`; its weights, funmnist/weights/evaluator.pt
(1.6 MB), are committed and loaded by every script.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from .cli import fail

WEIGHTS = Path(__file__).resolve().parent / "weights" / "evaluator.pt"
FEATURES = 128  # the width of the layer that FID compares


class Evaluator(nn.Module):
    """A small VGG-style net: 32x32 -> 16 -> 8 -> 4, then 128 features (FID's space) and 10 logits."""

    def __init__(self):
        super().__init__()

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.trunk = nn.Sequential(
            *block(1, 32), nn.MaxPool2d(2),
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
            *block(64, 128), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(128 * 4 * 4, FEATURES), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURES, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


_loaded: dict[torch.device, Evaluator] = {}


def load_evaluator(device: torch.device) -> Evaluator:
    """The committed evaluator in eval mode, loaded once per device."""
    if device not in _loaded:
        net = Evaluator()
        try:
            net.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
        except (OSError, RuntimeError) as e:
            fail(
                f"{WEIGHTS}: evaluator unreadable ({type(e).__name__}); retrain with python -m funmnist.train_evaluator"
            )
        _loaded[device] = net.to(device, memory_format=torch.channels_last).eval()
    return _loaded[device]
