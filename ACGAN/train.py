"""Auxiliary classifier GAN (Odena et al. 2017) on the DCGAN-style pair of the original README.

    python ACGAN/train.py        # -> ACGAN/samples/

Networks (channels 32-256, half the original's 64-512, so that the default run fits its time on a CPU):
    generator      z (100) multiplied by a learnt 100-d embedding of the class c -> 2x2 transposed conv ->
                   four stride-2 4x4 transposed convs with BatchNorm and ReLU between them, sigmoid
    discriminator  four stride-2 4x4 convs, 32x32 -> 2x2, with LeakyReLU(0.2) and BatchNorm, then two
                   2x2 conv heads on the same features: one real/fake logit, and ten class logits
Unlike the conditional GAN, the discriminator is not told the class: it has to recognise it.

Objective (S the source logit, C the class logits, CE the cross-entropy of the logits; no softmax
before it, which would squash the loss and its gradient):
    discriminator  -log sigma(S(x)) - log(1 - sigma(S(G(z, c)))) + CE(C(x), y)
    generator      -log sigma(S(G(z, c))) + CE(C(G(z, c)), c)
so the generator draws digits that the discriminator's classifier, taught by real digits, recognises.
Adam 2e-4, betas (0.5, 0.999), for both. Three choices differ from the paper (its page: why):
  - the class head learns from real digits only; the paper also trains it on CE(C(G(z, c)), c);
  - the discriminator sees real and fake images in one batch (`judge`), so that BatchNorm cannot
    tell them apart by their batch statistics;
  - the class multiplies the noise, as in the Keras ACGAN example, instead of joining it as [z, onehot(c)].

Samples and figures come from an exponential moving average of the generator's weights (decay
0.999, `fm.moving_average`), as in the unconditional GANs here, with BatchNorm statistics recomputed
for the averaged weights on fresh noise and classes (`fm.settle_batchnorm`). `metrics.json` gives
the raw generator's figures under `raw_generator`; `process.gif` shows the raw generator as it trains.
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

        self.trunk = nn.Sequential(*down(1, w), *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w))
        self.source = nn.Conv2d(8 * w, 1, 2)
        self.classes = nn.Conv2d(8 * w, CLASSES, 2)

    def forward(self, x):
        """The real/fake logit (N,) and the class logits (N, 10)."""
        features = self.trunk(x)
        return self.source(features).flatten(), self.classes(features).flatten(1)


class Generator(nn.Module):
    def __init__(self, z_dim=100, w=32):
        super().__init__()

        def up(c_in, c_out):
            return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.embed = nn.Embedding(CLASSES, z_dim)
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

    def forward(self, z, c):
        zc = z * self.embed(c)  # every input unit depends on the noise: none can carry the class alone
        return self.net(zc[:, :, None, None])


def class_loss(class_logits, labels):
    """CE(C(x), y) = -log softmax(C(x))_y, averaged over the batch; the head gives logits, not probabilities."""
    return F.cross_entropy(class_logits, labels)


def discriminator_loss(real_source, real_classes, fake_source, y):
    """-log sigma(S(x)) - log(1 - sigma(S(G(z, c)))) + CE(C(x), y): the class head learns from real digits."""
    real = F.binary_cross_entropy_with_logits(real_source, torch.ones_like(real_source))
    fake = F.binary_cross_entropy_with_logits(fake_source, torch.zeros_like(fake_source))
    return real + fake + class_loss(real_classes, y)


def generator_loss(fake, c):
    """-log sigma(S(G(z, c))) + CE(C(G(z, c)), c); fake = (source, classes)."""
    return F.binary_cross_entropy_with_logits(fake[0], torch.ones_like(fake[0])) + class_loss(fake[1], c)


def main():
    p = fm.parser(__file__, "Train an auxiliary classifier GAN.", epochs=10, batch_size=64, lr=2e-4)
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
    fixed_c = torch.arange(CLASSES, device=run.device).repeat_interleave(10)
    fixed_z = torch.randn(len(fixed_c), args.z_dim, device=run.device)
    # fix_noise.png: the same ten noise vectors (columns) in every row, so style stays along a column
    style_z = torch.randn(10, args.z_dim, device=run.device).repeat(CLASSES, 1)
    fm.save_grid(data.train_x[:64], run.out / "real.png")

    def noise(n):
        return torch.randn(n, args.z_dim, device=run.device)

    def judge(x, fake):
        """The discriminator's (source, classes) for real and fake images, from one batch of both.

        One batch, so that BatchNorm normalises both alike: with a batch of fakes alone, the class
        head could tell fakes by their batch statistics and learn for them a labelling of its own.
        """
        source, classes = disc(torch.cat([x, fake]))
        return (source[: len(x)], classes[: len(x)]), (source[len(x) :], classes[len(x) :])

    for x, y in run.batches(data.train_x, data.train_y):
        c = torch.randint(CLASSES, (len(x),), device=run.device)
        fake = gen(noise(len(x)), c)
        (real_source, real_classes), (fake_source, _) = judge(x, fake.detach())
        d_loss = discriminator_loss(real_source, real_classes, fake_source, y)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = generator_loss(judge(x, fake)[1], c)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        gen_avg.update_parameters(gen)
        run.log(d=d_loss, g=g_loss)
        if run.frame_due:
            with fm.evaluating(gen):
                run.save_frame(gen(fixed_z, fixed_c), nrow=10)

    fm.settle_batchnorm(gen_avg, lambda n: (noise(n), torch.randint(CLASSES, (n,), device=run.device)))
    with fm.evaluating(gen, gen_avg):
        fm.save_grid(gen_avg(fixed_z, fixed_c), run.out / "sample.png", nrow=10)
        fm.save_grid(gen_avg(style_z, fixed_c), run.out / "fix_noise.png", nrow=10)
        quality = fm.conditional_metrics(lambda c: gen_avg(noise(len(c)), c), data)
        quality["raw_generator"] = fm.conditional_metrics(lambda c: gen(noise(len(c)), c), data)
    run.finish(**quality)


if __name__ == "__main__":
    main()
