"""Spatial transformer networks (Jaderberg et al. 2015) on distorted MNIST, beside a plain CNN.

    python Spatial_Transformer/train.py        # -> Spatial_Transformer/samples/

Data, the paper's rotated-translated-scaled MNIST: each digit is rotated by up to +-45 degrees,
scaled by 0.7 to 1.2 and translated at random on a 42x42 canvas. Training images are distorted
afresh at every step; the test set is distorted once, by a generator with a fixed seed, so every
run is measured on the same images.

Networks:
    CNN            conv 5x5 1->16, ReLU, maxpool 2 (42 -> 21); conv 5x5 16->32, ReLU, maxpool 2 (-> 10);
                   linear 3200 -> 256, ReLU, linear 256 -> 10 logits (BatchNorm after each conv)
    localisation   maxpool 2 (42 -> 21); conv 5x5 1->32, ReLU, maxpool 2 (-> 8); conv 5x5 32->64, ReLU,
                   maxpool 2 (-> 2); linear 256 -> 64, ReLU, linear 64 -> 6: the affine theta
    ST-CNN         x -> theta = loc(x) -> grid_sample(x, affine_grid(theta)) (42x42) -> the same CNN
The last localisation layer starts at zero weights and the identity's bias, so the transformer
starts by passing the image through, and learns to undo the distortion only as far as that helps
the classifier: it gets no other signal.

Objective: cross-entropy for both. Each step trains both models on the same distorted batch, with
Adam 1e-3 and a cosine decay, so that the comparison has the same budget and the same data.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm

CANVAS = 42
TEST_SEED = 2015  # the test set's distortions, the same whatever --seed says


def distort(images, generator=None):
    """Rotate (+-45 degrees), scale (0.7-1.2) and translate each 32x32 image onto a 42x42 canvas.

    theta maps the canvas's normalised coordinates to the image's: u_in = R(-a) (u_out * 21 - t) / (16 s).
    The shift t keeps the 28-pixel digit's box inside the canvas: |t| <= (42 - 28 s) / 2 pixels.
    """
    n, device = len(images), images.device

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand(n, *shape, generator=generator, device=device)

    angle, scale = uniform(-math.pi / 4, math.pi / 4), uniform(0.7, 1.2)
    shift = uniform(-1, 1, 2) * ((CANVAS - 28 * scale) / 2).clamp(min=0)[:, None]
    cos, sin = angle.cos(), angle.sin()
    rotation = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)  # R(-a)
    linear = rotation * (CANVAS / 2 / (16 * scale))[:, None, None]
    offset = -(rotation @ shift[:, :, None]) / (16 * scale)[:, None, None]
    grid = F.affine_grid(torch.cat([linear, offset], 2), [n, 1, CANVAS, CANVAS], align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 10 * 10, 256), nn.ReLU(), nn.Linear(256, 10),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)


class SpatialTransformer(nn.Module):
    """Predicts an affine theta from the image and resamples the image with it."""

    def __init__(self):
        super().__init__()
        self.loc = nn.Sequential(
            nn.MaxPool2d(2),
            nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, 6),
        )  # fmt: skip
        nn.init.zeros_(self.loc[-1].weight)
        with torch.no_grad():
            self.loc[-1].bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]))

    def forward(self, x):
        theta = self.loc(x).view(-1, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)


class STCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer, self.cnn = SpatialTransformer(), CNN()

    def forward(self, x):
        return self.cnn(self.transformer(x))


def main():
    p = fm.parser(
        __file__, "Train a CNN and a spatial-transformer CNN on distorted MNIST.", epochs=20, batch_size=128, lr=1e-3
    )
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    test_x = distort(data.test_x, torch.Generator(run.device).manual_seed(TEST_SEED))
    models = {"stn": run.to_device(STCNN()), "cnn": run.to_device(CNN())}
    opts = {k: torch.optim.Adam(m.parameters(), lr=args.lr) for k, m in models.items()}
    scheds = {k: torch.optim.lr_scheduler.CosineAnnealingLR(o, run.total_steps) for k, o in opts.items()}
    run.track(**models, **{f"opt_{k}": o for k, o in opts.items()}, **{f"sched_{k}": s for k, s in scheds.items()})
    shown = test_x[:32]
    fm.save_grid(shown, run.out / "real.png")

    def transformed():  # distorted test inputs, each beside what the transformer makes of it
        with fm.evaluating(models["stn"]):
            return torch.stack([shown, models["stn"].transformer(shown)], 1).flatten(0, 1)

    for x, y in run.batches(data.train_x, data.train_y):
        x = distort(x)
        losses = {}
        for k, model in models.items():
            losses[k] = F.cross_entropy(model(x), y)
            opts[k].zero_grad(set_to_none=True)
            losses[k].backward()
            opts[k].step()
            scheds[k].step()
        run.log(**losses)
        if run.frame_due:
            run.save_frame(transformed())
        if run.epoch_done:
            run.log_epoch(**{f"{k}_test_acc": fm.accuracy(m, test_x, data.test_y) for k, m in models.items()})

    fm.save_grid(transformed(), run.out / "stn.png")
    epochs = [e["epoch"] for e in run.epoch_log]
    curves = {k: (epochs, [e[f"{k}_test_acc"] for e in run.epoch_log]) for k in ("stn", "cnn")}
    fm.plot_curves(run.out / "accuracy.png", curves, "epoch", "test accuracy", title="Distorted MNIST")
    run.finish(
        test_acc=fm.accuracy(models["stn"], test_x, data.test_y),
        cnn_test_acc=fm.accuracy(models["cnn"], test_x, data.test_y),
    )


if __name__ == "__main__":
    main()
