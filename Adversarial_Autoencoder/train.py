"""Adversarial autoencoder (Makhzani et al. 2016): an adversary makes the codes follow a chosen prior.

    python Adversarial_Autoencoder/train.py                   # triangle -> samples/fit_triangle/
    python Adversarial_Autoencoder/train.py --prior donut     # annulus  -> samples/fit_donut/
    python Adversarial_Autoencoder/train.py --prior gaussian  # N(0, I)  -> samples/fit_gaussian/

Networks, fully connected on the 28x28 digit (the 2-pixel border of the 32x32 image is always 0):
    encoder        784 -> 1000 -> 1000 -> 2, ReLU, linear output (the code z)
    decoder        2 -> 1000 -> 1000 -> 784, ReLU, sigmoid on the pixels
    discriminator  2 -> 1000 -> 1000 -> 1 logit, ReLU: "is this z a draw from the prior?"

Each batch takes three steps:
    1. reconstruction, on encoder and decoder: sum_pixels BCE(x, dec(enc(x))), averaged over the batch
    2. regularisation, on the discriminator: BCE(D(z_prior), 1) + BCE(D(enc(x)), 0)
    3. regularisation, on the encoder: BCE(D(enc(x)), 1), so that codes pass for prior draws
Adam 1e-3 for all three steps, each with its own optimiser, decayed to 0 by a cosine schedule so
that the adversarial game settles by the end (its page: why).

The priors are uniform over their support: an equilateral triangle with circumradius 2 centred on
0, or the annulus 1 <= |z| <= 2. (The original defined these samplers but never called them, so
its codes were free to end 100 times larger than the prior.) `in_support` is the share of test
codes inside the support; for the Gaussian, inside the disc holding 99% of its mass.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm

TRIANGLE = torch.tensor([[math.cos(a), math.sin(a)] for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)]) * 2
DONUT_RADII = 1.0, 2.0
GAUSSIAN_RADIUS = math.sqrt(-2 * math.log(0.01))  # P(|z| <= r) = 1 - exp(-r^2 / 2) = 0.99 in 2-d


def sample_prior(prior: str, n: int, device=None, generator=None) -> torch.Tensor:
    """n draws from the prior, uniform over its support (the Gaussian: N(0, I))."""

    def uniform(*shape):
        return torch.rand(*shape, device=device, generator=generator)

    if prior == "gaussian":
        return torch.randn(n, 2, device=device, generator=generator)
    if prior == "triangle":  # fold the unit square's upper half onto its lower half: uniform over a triangle
        a, b = uniform(n, 1), uniform(n, 1)
        fold = a + b > 1
        a, b = torch.where(fold, 1 - a, a), torch.where(fold, 1 - b, b)
        v0, v1, v2 = TRIANGLE.to(device)
        return v0 + a * (v1 - v0) + b * (v2 - v0)
    r_in, r_out = DONUT_RADII  # area grows as r^2, so r^2 is uniform
    r = (r_in**2 + uniform(n) * (r_out**2 - r_in**2)).sqrt()
    angle = uniform(n) * 2 * math.pi
    return torch.stack([r * angle.cos(), r * angle.sin()], 1)


def in_support(prior: str, z: torch.Tensor) -> torch.Tensor:
    """Whether each code lies in the prior's support (a boolean per row)."""
    radius = z.norm(dim=1)
    if prior == "gaussian":
        return radius <= GAUSSIAN_RADIUS
    if prior == "donut":
        return (radius >= DONUT_RADII[0]) & (radius <= DONUT_RADII[1])
    corners = TRIANGLE.to(z.device)
    edges = corners.roll(-1, 0) - corners  # counter-clockwise: inside is left of every edge
    to_point = z[:, None, :] - corners[None]
    cross = edges[None, :, 0] * to_point[..., 1] - edges[None, :, 1] * to_point[..., 0]
    return (cross >= 0).all(1)


def outlines(prior: str) -> list:
    """The support's boundary curves, for the scatter plot."""
    if prior == "triangle":
        return [TRIANGLE.numpy()]
    angle = torch.linspace(0, 2 * math.pi, 200)
    circle = torch.stack([angle.cos(), angle.sin()], 1)
    radii = DONUT_RADII if prior == "donut" else (GAUSSIAN_RADIUS,)
    return [(r * circle).numpy() for r in radii]


def mlp(n_in, n_out):
    return nn.Sequential(nn.Linear(n_in, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(), nn.Linear(1000, n_out))


def main():
    p = fm.parser(
        __file__,
        "Train an adversarial autoencoder with a 2-d prior.",
        epochs=10,
        batch_size=128,
        lr=1e-3,
        subfolder=lambda a: f"fit_{a.prior}",
    )
    p.add_argument("--prior", choices=["triangle", "donut", "gaussian"], default="triangle")
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    enc, dec, disc = (run.to_device(net) for net in (mlp(784, 2), mlp(2, 784), mlp(2, 1)))
    opt_ae = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=args.lr)
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr)
    opt_g = torch.optim.Adam(enc.parameters(), lr=args.lr)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR
    sched_ae, sched_d, sched_g = (cosine(opt, run.total_steps) for opt in (opt_ae, opt_d, opt_g))
    run.track(
        enc=enc,
        dec=dec,
        disc=disc,
        opt_ae=opt_ae,
        opt_d=opt_d,
        opt_g=opt_g,
        sched_ae=sched_ae,
        sched_d=sched_d,
        sched_g=sched_g,
    )
    orig = data.test_x[:64]
    fm.save_grid(orig, run.out / "orig.png")

    for x in run.batches(data.train_x):
        x = fm.flat_digits(x)
        # 1. reconstruction
        recon = F.binary_cross_entropy_with_logits(dec(enc(x)), x, reduction="none").sum(1).mean()
        opt_ae.zero_grad(set_to_none=True)
        recon.backward()
        opt_ae.step()
        # 2. the discriminator tells prior draws (1) from codes (0)
        real, fake = disc(sample_prior(args.prior, len(x), run.device)), disc(enc(x).detach())
        d_loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # 3. the encoder makes its codes pass for prior draws
        fooled = disc(enc(x))
        g_loss = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for sched in (sched_ae, sched_d, sched_g):
            sched.step()
        run.log(recon=recon, d=d_loss, g=g_loss)
        if run.frame_due:
            with fm.evaluating(enc, dec):
                run.save_frame(fm.pad_flat_digits(dec(enc(fm.flat_digits(orig))).sigmoid()))

    with fm.evaluating(enc, dec):
        mse = fm.recon_mse(lambda x: fm.pad_flat_digits(dec(enc(fm.flat_digits(x))).sigmoid()), data.test_x)
        codes = enc(fm.flat_digits(data.test_x))
    draws = sample_prior(args.prior, 100_000, generator=torch.Generator().manual_seed(0))
    title = f"AAE, {args.prior} prior: test codes and the prior's support"
    fm.scatter_codes(
        run.out / "manifold_scatter.png", codes.cpu().numpy(), data.test_y.cpu().numpy(), title, outlines(args.prior)
    )
    run.finish(
        prior=args.prior,
        recon_mse=mse,
        in_support=in_support(args.prior, codes).float().mean().item(),
        code_mean=codes.mean(0).tolist(),
        code_std=codes.std(0).tolist(),
        prior_mean=draws.mean(0).tolist(),
        prior_std=draws.std(0).tolist(),
    )


if __name__ == "__main__":
    main()
