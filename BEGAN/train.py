"""Boundary equilibrium GAN (Berthelot et al. 2017) on the DCGAN-style pair of the original README.
Page: BEGAN/README.md (flags, departures from the paper, why the defaults)

    python BEGAN/train.py      # 13 to 24 minutes on a 2-core AMD EPYC (two kinds) -> BEGAN/samples/

Networks (channels 32-64-128-256, half the original's 64-512, to fit the time on a CPU), the DCGAN
pair with three of the paper's changes, ELU activations, nearest-neighbour upsampling and pairs of
3x3 convs in place of stride-2 transposed convs, and no squashing of the output; its BatchNorm
stays, though the paper drops it:
    discriminator  an autoencoder: four stride-2 4x4 convs and a 2x2 conv encode 32x32 to h (64); a
                   2x2 transposed conv, three steps of upsampling and two 3x3 convs, and upsampling
                   and a 3x3 conv to the pixels decode it; BatchNorm after each layer but the first,
                   the code and the output
    generator      z (100) -> 2x2 transposed conv -> three steps of upsampling and two 3x3 convs ->
                   upsampling and a 3x3 conv to the pixels, BatchNorm and ELU between them; its pixels
                   are clamped to [0, 1] only to be viewed and measured (`fake_pixels_clamped` in
                   metrics.json: the share of pixels that the clamp changes)
No sigmoid: L1's gradient keeps its size however small the error, so a sigmoid output would be
driven into saturation. BatchNorm makes an image's error depend on its batch: a batch of one image
repeated is reconstructed worse than a batch of different images (`copies_batch_loss` against
`mixed_batch_loss`), so a generator that collapses onto the digit with the least ink (1s, by
`real_loss_by_digit` and `one_digit_batch_loss`) raises its own loss.

Objective, with L(v) = mean over pixels of |v - D(v)| for each image (an L1 reconstruction loss):
    discriminator  L(x) - k_t L(G(z))
    generator      L(G(z))
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),   k_0 = 0
The proportional control k_t keeps E L(G(z)) = gamma E L(x): gamma trades diversity (higher) for
quality (lower); gamma = 1, lambda_k = 0.001. M_global = L(x) + |gamma L(x) - L(G(z))| measures
convergence (`convergence.png`). Adam 1e-4, betas (0.5, 0.999), held for the first half of the run,
then linearly to zero (the paper halves it when M_global stalls), batches of 16 (the paper's), 4
epochs (15,000 steps). Both players step together from one forward pass (`backward`), as the paper
writes the two losses for one step: one pass of the autoencoder fewer per step than updating the
discriminator first and then scoring the fakes again for the generator.

Samples and figures come from an exponential moving average of the generator's weights (decay
0.999, `fm.moving_average`), with BatchNorm statistics recomputed for the averaged weights
(`fm.settle_batchnorm`), as for the other GANs here. `metrics.json` gives the raw generator's figures
under `raw_generator`; `process.gif` shows the raw generator as it trains.
"""

import torch
import torch.nn as nn

import funmnist as fm


class ELU(nn.ELU):
    """nn.ELU computed through exp: torch's CPU kernel goes through expm1, which this build does not
    vectorise (17 times as slow as exp); ELU was a sixth of a step, and this makes a step 1.12 times as fast."""

    class Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = torch.where(x > 0, x, x.clamp(max=0).exp_().sub_(1))  # clamped: exp of a large x overflows
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * (y.clamp(max=0) + 1)  # 1 above 0; below, exp(x) = y + 1

    def forward(self, x):
        return self.Function.apply(x)


def up(c_in, c_out):
    """Double the resolution as the paper does, nearest-neighbour upsampling then two 3x3 convs: a stride-2
    transposed conv draws a checkerboard that an autoencoder decoding with the same layers can reconstruct."""
    return [
        nn.Upsample(scale_factor=2),
        nn.Conv2d(c_in, c_out, 3, 1, 1),
        nn.BatchNorm2d(c_out),
        ELU(),
        nn.Conv2d(c_out, c_out, 3, 1, 1),
        nn.BatchNorm2d(c_out),
        ELU(),
    ]


class Discriminator(nn.Module):
    def __init__(self, h_dim=64, w=32):
        super().__init__()

        def down(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), ELU()]

        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1),  # no BatchNorm on the pixels, as in DCGAN
            ELU(),
            *down(w, 2 * w),
            *down(2 * w, 4 * w),
            *down(4 * w, 8 * w),
            nn.Conv2d(8 * w, h_dim, 2),
            nn.ConvTranspose2d(h_dim, 8 * w, 2),
            nn.BatchNorm2d(8 * w),
            ELU(),
            *up(8 * w, 4 * w),
            *up(4 * w, 2 * w),
            *up(2 * w, w),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(w, 1, 3, 1, 1),
        )

    def forward(self, x):
        """L(x): each image's mean absolute reconstruction error."""
        return (self.net(x) - x).abs().mean((1, 2, 3))


class Generator(nn.Module):
    def __init__(self, z_dim=100, w=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, 8 * w, 2),
            nn.BatchNorm2d(8 * w),
            ELU(),
            *up(8 * w, 4 * w),
            *up(4 * w, 2 * w),
            *up(2 * w, w),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(w, 1, 3, 1, 1),
        )

    def forward(self, z):
        """Pixels, unbounded: clamp them to [0, 1] to view them."""
        return self.net(z[:, :, None, None])


class Equilibrium(nn.Module):
    """BEGAN's k_t, held as a buffer so that checkpoints keep it."""

    def __init__(self, gamma=0.5, lambda_k=0.001):
        super().__init__()
        self.gamma, self.lambda_k = gamma, lambda_k
        self.register_buffer("k", torch.zeros(()))

    def update(self, real_loss: float, fake_loss: float) -> float:
        """k += lambda_k (gamma L(x) - L(G(z))), clipped to [0, 1]; returns M_global."""
        balance = self.gamma * real_loss - fake_loss
        self.k.add_(self.lambda_k * balance).clamp_(0, 1)
        return real_loss + abs(balance)


def backward(real_loss, fake_loss, k, disc):
    """Both players' gradients from one pass through the fakes, as the paper updates them together: the
    generator's of L(G(z)), the discriminator's of L(x) - k L(G(z)) (its gradient of L(G(z)), times -k)."""
    fake_loss.backward()
    for p in disc.parameters():
        p.grad.mul_(-k)
    real_loss.backward()


def main():
    p = fm.parser(__file__, "Train a boundary equilibrium GAN.", epochs=4, batch_size=16, lr=1e-4)
    p.add_argument("--z-dim", type=fm.positive_int, default=100, help="size of the noise vector")
    p.add_argument("--gamma", type=fm.unit_interval, default=1.0, help="the diversity ratio E L(G(z)) / E L(x)")
    p.add_argument("--lambda-k", type=fm.positive_float, default=0.001, help="the learning rate of k")
    p.add_argument(
        "--lr-schedule",
        choices=["linear", "constant"],
        default="linear",
        help="linear: held for the first half of the run, then taken linearly to zero (the paper halves it)",
    )
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    gen, disc = run.to_device(Generator(args.z_dim)), run.to_device(Discriminator())
    equilibrium = Equilibrium(args.gamma, args.lambda_k).to(run.device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999))
    decay = run.linear_decay(opt_g, opt_d) if args.lr_schedule == "linear" else []
    gen_avg = fm.moving_average(gen)  # what is sampled and measured at the end
    schedulers = dict(zip(["sched_g", "sched_d"], decay, strict=False))
    run.track(gen=gen, gen_avg=gen_avg, disc=disc, opt_g=opt_g, opt_d=opt_d, equilibrium=equilibrium, **schedulers)
    fixed_z = torch.randn(64, args.z_dim, device=run.device)
    fm.save_grid(data.train_x[:64], run.out / "real.png")

    def noise(n):
        return torch.randn(n, args.z_dim, device=run.device)

    def images(generator, z):  # the generator's pixels are unbounded: clamped only to be viewed and measured
        return generator(z).clamp(0, 1)

    for x in run.batches(data.train_x):
        real_loss, g_loss = disc(x).mean(), disc(gen(noise(len(x)))).mean()
        d_loss = real_loss - equilibrium.k * g_loss
        opt_d.zero_grad(set_to_none=True)
        opt_g.zero_grad(set_to_none=True)
        backward(real_loss, g_loss, equilibrium.k, disc)
        opt_d.step()
        opt_g.step()
        for sched in decay:
            sched.step()
        gen_avg.update_parameters(gen)
        m_global = equilibrium.update(real_loss.item(), g_loss.item())
        run.log(d=d_loss, g=g_loss, k=equilibrium.k, m_global=m_global)
        if run.frame_due:
            with fm.evaluating(gen):
                run.save_frame(images(gen, fixed_z))

    fm.plot_curves(
        run.out / "convergence.png", {"M_global": run.losses["m_global"]}, "step", "M_global", "BEGAN", smooth=True
    )
    fm.settle_batchnorm(gen_avg, noise)
    with fm.evaluating(gen, gen_avg):
        fm.save_grid(images(gen_avg, fixed_z), run.out / "sample.png")
        quality = fm.generator_metrics(lambda n: images(gen_avg, noise(n)), data)
        quality["raw_generator"] = fm.generator_metrics(lambda n: images(gen, noise(n)), data)
        # with BatchNorm an image's L depends on its batch: batches of different digits (as in training),
        # of one digit, and of one image repeated
        size = min(args.batch_size, int(data.test_y.bincount().min()))

        def batch_losses(x):
            """L(x) of each image, in batches of `size` taken in order."""
            return torch.cat([disc(b) for b in x[: len(x) // size * size].split(size)])

        fakes = gen(noise(len(data.test_x)))  # the raw generator's: the game's
        fake_loss = batch_losses(fakes).mean().item()
        # the share of pixels that the clamp changes: the autoencoder judges them unclamped
        fake_pixels_clamped = ((fakes < 0) | (fakes > 1)).float().mean().item()
        real_losses = batch_losses(data.test_x)
        labels = data.test_y[: len(real_losses)]
        # whether the error follows ink (without BatchNorm it did: least on 1s)
        real_loss_by_digit = [real_losses[labels == d].mean().item() for d in range(10)]
        # what a generator making only that digit would be scored
        one_digit_batch_loss = [batch_losses(data.test_x[data.test_y == d]).mean().item() for d in range(10)]
        # and one making only one image
        copies = data.test_x[: len(real_losses) : size].repeat_interleave(size, 0)
        copies_loss = batch_losses(copies).mean().item()
    run.finish(
        k=equilibrium.k.item(),
        real_loss_by_digit=real_loss_by_digit,
        one_digit_batch_loss=one_digit_batch_loss,
        fake_loss=fake_loss,
        fake_pixels_clamped=fake_pixels_clamped,
        mixed_batch_loss=real_losses.mean().item(),
        copies_batch_loss=copies_loss,
        **quality,
    )


if __name__ == "__main__":
    main()
