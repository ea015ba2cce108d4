"""Generative adversarial network (Goodfellow et al. 2014) on the DCGAN-style pair of the original README.

    python GAN/train.py        # about 8 minutes on a 2-core AMD EPYC, 22-34 on an Intel Xeon -> GAN/samples/

Networks (channels 32-64-128-256, half the original's 64-512: four times fewer operations, so that
the default run fits the time on a CPU):
    discriminator  four stride-2 4x4 convs, 32x32 -> 16 -> 8 -> 4 -> 2, each with LeakyReLU(0.2) and
                   BatchNorm, then a 2x2 conv to one logit
    generator      the mirror: z (100) -> 2x2 transposed conv -> four stride-2 4x4 transposed convs with
                   BatchNorm and ReLU between them, sigmoid on the pixels

Objective, the non-saturating form of the minimax game (D's output is a logit, sigma its sigmoid),
with one-sided label smoothing (Salimans et al. 2016): real images' target is s = 0.9, not 1:
    discriminator  -s log sigma(D(x)) - (1 - s) log(1 - sigma(D(x))) - log(1 - sigma(D(G(z))))
    generator      -log sigma(D(G(z)))          (instead of log(1 - sigma(D(G(z)))), which saturates)
The smoothing keeps the discriminator from winning outright, whose overconfident logits would give
the generator steep, noisy gradients (the page says what a run without it did).
Adam 2e-4, betas (0.5, 0.999), for both; one discriminator step per generator step.

Samples and figures come from an exponential moving average of the generator's weights (decay
0.999, `fm.moving_average`), which smooths the game's oscillation, as in ProGAN, BigGAN and StyleGAN,
with BatchNorm statistics recomputed for the averaged weights (`fm.settle_batchnorm`).
`metrics.json` gives the raw generator's figures under `raw_generator`; `process.gif` shows the raw
generator as it trains.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm


class Discriminator(nn.Module):
    def __init__(self, w=32):
        super().__init__()

        def down(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2), nn.BatchNorm2d(c_out)]

        self.net = nn.Sequential(
            *down(1, w), *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w), nn.Conv2d(8 * w, 1, 2)
        )

    def forward(self, x):
        return self.net(x).flatten()


class Generator(nn.Module):
    def __init__(self, z_dim=100, w=32):
        super().__init__()

        def up(c_in, c_out):
            return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, 8 * w, 2),
            nn.BatchNorm2d(8 * w),
            nn.ReLU(),
            *up(8 * w, 4 * w),
            *up(4 * w, 2 * w),
            *up(2 * w, w),
            nn.ConvTranspose2d(w, 1, 4, 2, 1),
            nn.Sigmoid(),
        )

    def forward(self, z):
        return self.net(z[:, :, None, None])


REAL_TARGET = 0.9  # one-sided label smoothing: the fakes' target stays 0


def discriminator_loss(real_logits, fake_logits):
    """Cross-entropy against targets 0.9 for real images and 0 for fakes, each term averaged over its batch."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, REAL_TARGET))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits):
    """-log sigma(D(G(z))), the non-saturating generator loss."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def main():
    p = fm.parser(__file__, "Train a GAN.", epochs=10, batch_size=64, lr=2e-4)
    p.add_argument("--z-dim", type=fm.positive_int, default=100, help="size of the noise vector")
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    gen, disc = run.to_device(Generator(args.z_dim)), run.to_device(Discriminator())
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999))
    gen_avg = fm.moving_average(gen)  # what is sampled and measured at the end
    run.track(gen=gen, gen_avg=gen_avg, disc=disc, opt_g=opt_g, opt_d=opt_d)
    fixed_z = torch.randn(64, args.z_dim, device=run.device)
    fm.save_grid(data.train_x[:64], run.out / "real.png")

    def noise(n):
        return torch.randn(n, args.z_dim, device=run.device)

    for x in run.batches(data.train_x):
        fake = gen(noise(len(x)))
        d_loss = discriminator_loss(disc(x), disc(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = generator_loss(disc(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        gen_avg.update_parameters(gen)
        run.log(d=d_loss, g=g_loss)
        if run.frame_due:
            with fm.evaluating(gen):
                run.save_frame(gen(fixed_z))

    fm.settle_batchnorm(gen_avg, noise)
    with fm.evaluating(gen, gen_avg):
        fm.save_grid(gen_avg(fixed_z), run.out / "sample.png")
        quality = fm.generator_metrics(lambda n: gen_avg(noise(n)), data)
        quality["raw_generator"] = fm.generator_metrics(lambda n: gen(noise(n)), data)
    run.finish(**quality)


if __name__ == "__main__":
    main()
