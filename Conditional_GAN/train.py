"""Conditional GAN (Mirza and Osindero 2014) on the DCGAN-style pair of the original README.

    python Conditional_GAN/train.py        # -> Conditional_GAN/samples/

Both networks are told the digit y, as a one-hot vector:
    generator      [z (100), onehot(y) (10)] -> 2x2 transposed conv -> four stride-2 4x4 transposed convs
                   with BatchNorm and ReLU between them, sigmoid on the pixels
    discriminator  a stride-2 4x4 conv on the image (32x32 -> 16x16), then the one-hot broadcast to ten
                   16x16 feature maps and joined to the image features, then three more stride-2 convs
                   (16 -> 8 -> 4 -> 2) with LeakyReLU(0.2) and BatchNorm, and a 2x2 conv to one logit
Channels 32-256, half the original's 64-512, so that the default run fits its time on a CPU.

Objective, the non-saturating game of GAN/train.py with every term conditioned on y, the real pairs'
target smoothed to s = 0.9 as there (x, y a real pair, y' drawn uniformly):
    discriminator  -s log sigma(D(x, y)) - (1 - s) log(1 - sigma(D(x, y))) - log(1 - sigma(D(G(z, y'), y')))
    generator      -log sigma(D(G(z, y'), y'))
A generator that draws the wrong digit is caught, because the discriminator has learnt real pairs.
Adam 2e-4, betas (0.5, 0.999), for both.

Samples and figures come from a moving average of the generator's weights, as in GAN/train.py;
`metrics.json` gives the raw generator's figures under `raw_generator`.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm

CLASSES = 10


class Discriminator(nn.Module):
    def __init__(self, w=32):
        super().__init__()

        def down(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2), nn.BatchNorm2d(c_out)]

        self.image = nn.Sequential(*down(1, w))
        self.joint = nn.Sequential(
            *down(w + CLASSES, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w), nn.Conv2d(8 * w, 1, 2)
        )

    def forward(self, x, y):
        features = self.image(x)
        label_maps = F.one_hot(y, CLASSES).to(features.dtype)[:, :, None, None].expand(-1, -1, *features.shape[2:])
        return self.joint(torch.cat([features, label_maps], 1)).flatten()


class Generator(nn.Module):
    def __init__(self, z_dim=100, w=32):
        super().__init__()

        def up(c_in, c_out):
            return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim + CLASSES, 8 * w, 2),
            nn.BatchNorm2d(8 * w),
            nn.ReLU(),
            *up(8 * w, 4 * w),
            *up(4 * w, 2 * w),
            *up(2 * w, w),
            nn.ConvTranspose2d(w, 1, 4, 2, 1),
            nn.Sigmoid(),
        )

    def forward(self, z, y):
        zy = torch.cat([z, F.one_hot(y, CLASSES).to(z.dtype)], 1)
        return self.net(zy[:, :, None, None])


REAL_TARGET = 0.9  # one-sided label smoothing: the fakes' target stays 0


def discriminator_loss(real_logits, fake_logits):
    """Cross-entropy against targets 0.9 for real pairs and 0 for fakes, each term averaged over its batch."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, REAL_TARGET))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits):
    """-log sigma(D(G(z, y'), y')), the non-saturating generator loss."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def main():
    p = fm.parser(__file__, "Train a conditional GAN.", epochs=10, batch_size=64, lr=2e-4)
    p.add_argument("--z-dim", type=fm.positive_int, default=100, help="size of the noise vector")
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    gen, disc = run.to_device(Generator(args.z_dim)), run.to_device(Discriminator())
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999))
    gen_avg = fm.moving_average(gen)  # what is sampled and measured at the end
    run.track(gen=gen, gen_avg=gen_avg, disc=disc, opt_g=opt_g, opt_d=opt_d)
    # one row per digit, ten noise vectors each, the same for every frame
    fixed_y = torch.arange(CLASSES, device=run.device).repeat_interleave(10)
    fixed_z = torch.randn(len(fixed_y), args.z_dim, device=run.device)
    fm.save_grid(data.train_x[:64], run.out / "real.png")

    def noise(n):
        return torch.randn(n, args.z_dim, device=run.device)

    for x, y in run.batches(data.train_x, data.train_y):
        wanted = torch.randint(CLASSES, (len(x),), device=run.device)
        fake = gen(noise(len(x)), wanted)
        d_loss = discriminator_loss(disc(x, y), disc(fake.detach(), wanted))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = generator_loss(disc(fake, wanted))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        gen_avg.update_parameters(gen)
        run.log(d=d_loss, g=g_loss)
        if run.frame_due:
            with fm.evaluating(gen):
                run.save_frame(gen(fixed_z, fixed_y), nrow=10)

    fm.settle_batchnorm(gen_avg, lambda n: (noise(n), torch.randint(CLASSES, (n,), device=run.device)))
    with fm.evaluating(gen, gen_avg):
        fm.save_grid(gen_avg(fixed_z, fixed_y), run.out / "sample.png", nrow=10)
        quality = fm.conditional_metrics(lambda y: gen_avg(noise(len(y)), y), data)
        quality["raw_generator"] = fm.conditional_metrics(lambda y: gen(noise(len(y)), y), data)
    run.finish(**quality)


if __name__ == "__main__":
    main()
