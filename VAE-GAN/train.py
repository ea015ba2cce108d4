"""VAE-GAN (Larsen et al. 2016): a VAE whose reconstruction error is measured in a discriminator's features.

    python VAE-GAN/train.py            # VAE-GAN                    -> VAE-GAN/samples/
    python VAE-GAN/train.py --no-gan   # the same VAE, pixel loss   -> VAE-GAN/samples/no_gan/

Networks (DCGAN-style, channels 32-64-128-256, half the original's, to train in minutes on a CPU):
    encoder        four stride-2 4x4 convs (LeakyReLU 0.2, BatchNorm), 32 -> 2, then a 2x2 conv to mu, log sigma^2
    decoder        = generator: a 2x2 transposed conv from z, four stride-2 4x4 transposed convs (BatchNorm,
                   ReLU), sigmoid
    discriminator  four stride-2 4x4 convs (LeakyReLU 0.2, BatchNorm after the first), a 2x2 conv to one
                   logit; Dis_l(x) = the 128x4x4 output of its third block

Objective, with z ~ q(z|x), x~ = Dec(z) the reconstruction and x_p = Dec(z_p), z_p ~ N(0, I):
    L_prior = KL(q(z|x) || N(0, I))
    L_llike = 1/2 |Dis_l(x) - Dis_l(x~)|^2        (a Gaussian likelihood in feature space)
    L_GAN   = log D(x) + log(1 - D(x_p))                   (--fakes samples, the default)
    L_GAN   = log D(x) + log(1 - D(x~)) + log(1 - D(x_p))   (--fakes both, the paper's)
By default the discriminator rejects the prior's samples alone: judged by the reconstructions too,
which the feature term already holds close to the real images, it told the malformed samples
from real digits hardly better than the reconstructions (its page: why the defaults).
With one-sided label smoothing (Salimans et al. 2016), as in the GAN here, the real images' target
is s = 0.9, not 1: the discriminator descends -s log D(x) - (1 - s) log(1 - D(x)) for its real term.
Each network descends its own share (the paper's split):
    encoder        L_prior + L_llike
    decoder        gamma L_llike - L_GAN           (as usual, -log D(fake) instead of log(1 - D(fake)))
    discriminator  -L_GAN
Sums run over latent dimensions, features and fakes; everything is averaged over the batch. The
discriminator sees real images in one batch and its fakes in another, as the GAN's does, so that
its BatchNorm cannot separate them by their batch's statistics; the decoder makes reconstructions
and samples in one batch, so that its BatchNorm normalises them alike.
Adam 2e-4 (0.5, 0.999) for all three networks, held for the first half of the run, then taken
linearly to zero (`--lr-schedule linear`, CycleGAN's schedule): at a constant rate the adversarial
term keeps the decoder moving, and a falling one lets encoder and decoder settle together. Samples
come from the decoder as trained: with the rate at zero at the end there is no oscillation left
for a moving average of its weights to smooth (one, as the GANs here sample from, gave worse
samples: the page, why the defaults).
With --no-gan, the encoder and decoder train as a plain VAE with the Bernoulli pixel likelihood
instead: sum_pixels BCE(x, x~) + L_prior.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm


def down(c_in, c_out, norm=True):
    return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2), *([nn.BatchNorm2d(c_out)] if norm else [])]


def up(c_in, c_out):
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]


class Encoder(nn.Module):
    def __init__(self, latent_dim, w=32):
        super().__init__()
        self.net = nn.Sequential(
            *down(1, w), *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w), nn.Conv2d(8 * w, 2 * latent_dim, 2)
        )

    def forward(self, x):
        """mu and log sigma^2."""
        return self.net(x).flatten(1).chunk(2, dim=1)


class Decoder(nn.Module):
    def __init__(self, latent_dim, w=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 8 * w, 2),
            nn.BatchNorm2d(8 * w),
            nn.ReLU(),
            *up(8 * w, 4 * w),
            *up(4 * w, 2 * w),
            *up(2 * w, w),
            nn.ConvTranspose2d(w, 1, 4, 2, 1),
        )

    def forward(self, z):
        """Pixel logits; their sigmoid is the image."""
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    def __init__(self, w=32):
        super().__init__()
        self.features = nn.Sequential(*down(1, w, norm=False), *down(w, 2 * w), *down(2 * w, 4 * w))
        self.head = nn.Sequential(*down(4 * w, 8 * w), nn.Conv2d(8 * w, 1, 2))

    def forward(self, x):
        """Dis_l(x), flat, and the real/fake logit."""
        f = self.features(x)
        return f.flatten(1), self.head(f).flatten()


def kl_divergence(mu, logvar):
    """KL(N(mu, sigma^2) || N(0, I)) per image, summed over latent dimensions."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


def discriminator_loss(real_logits, fake_logits, real_target):
    """-L_GAN with the real images' target smoothed to `real_target`: summed over images, averaged over reals."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target), reduction="sum")
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits), reduction="sum")
    return (real + fake) / len(real_logits)


def generator_loss(fake_logits, batch_size):
    """The decoder's -L_GAN, non-saturating: -log D summed over the fakes the discriminator judges, per image."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits), reduction="sum") / batch_size


def main():
    p = fm.parser(
        __file__,
        "Train a VAE-GAN (or, with --no-gan, the same VAE with a pixel loss).",
        epochs=5,
        batch_size=64,
        lr=2e-4,
        subfolder=lambda a: "no_gan" if a.no_gan else "",
    )
    p.add_argument("--lr-d", type=fm.positive_float, default=2e-4, help="the discriminator's learning rate")
    p.add_argument(
        "--real-target", type=fm.unit_interval, default=0.9, help="the real images' target (one-sided label smoothing)"
    )
    p.add_argument("--latent-dim", type=fm.positive_int, default=32, help="size of z")
    p.add_argument("--gamma", type=fm.positive_float, default=0.01, help="weight of L_llike for the decoder")
    p.add_argument(
        "--fakes",
        choices=["both", "samples"],
        default="samples",
        help="what the discriminator rejects: reconstructions and prior samples (the paper's), or samples alone",
    )
    p.add_argument(
        "--lr-schedule",
        choices=["linear", "constant"],
        default="linear",
        help="linear: held for the first half of the run, then taken linearly to zero; constant: the paper's",
    )
    p.add_argument("--no-gan", action="store_true", help="train a plain VAE: pixel likelihood, no discriminator")
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    nets = Encoder(args.latent_dim), Decoder(args.latent_dim), Discriminator()
    enc, dec, disc = (run.to_device(net) for net in nets)
    opt_e = torch.optim.Adam(enc.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(dec.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr_d, betas=(0.5, 0.999))
    trained = (opt_e, opt_g) if args.no_gan else (opt_e, opt_g, opt_d)
    decay = run.linear_decay(*trained) if args.lr_schedule == "linear" else []
    schedulers = dict(zip(["sched_e", "sched_g", "sched_d"], decay, strict=False))
    run.track(enc=enc, dec=dec, disc=disc, opt_e=opt_e, opt_g=opt_g, opt_d=opt_d, **schedulers)
    orig = data.test_x[:32]
    fixed_z = torch.randn(32, args.latent_dim, device=run.device)
    fm.save_grid(data.test_x[:64], run.out / "orig.png")

    def reconstruct(x):
        return dec(enc(x)[0]).sigmoid()  # from the mean code

    def noise(n):
        return torch.randn(n, args.latent_dim, device=run.device)

    for x in run.batches(data.train_x):
        b = len(x)
        mu, logvar = enc(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        prior = kl_divergence(mu, logvar).mean()
        if args.no_gan:
            pixels = F.binary_cross_entropy_with_logits(dec(z), x, reduction="none").sum((1, 2, 3)).mean()
            opt_e.zero_grad(set_to_none=True)
            opt_g.zero_grad(set_to_none=True)
            (pixels + prior).backward()
            opt_e.step()
            opt_g.step()
            run.log(pixels=pixels, kl=prior)
        else:
            # one decoder call, so that its BatchNorm treats reconstructions and samples alike
            x_rec, x_p = dec(torch.cat([z, torch.randn_like(z)])).sigmoid().chunk(2)
            # discriminator: real images (target s) against its fakes (0), each kind in a batch of its own
            fakes = torch.cat([x_rec, x_p]) if args.fakes == "both" else x_p
            d_loss = discriminator_loss(disc(x)[1], disc(fakes.detach())[1], args.real_target)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            # encoder and decoder, each on its own share of the losses
            real_features = disc(x)[0]
            fake_features, fake_logits = disc(torch.cat([x_rec, x_p]))
            llike = 0.5 * (fake_features[:b] - real_features).pow(2).sum(1).mean()
            g_gan = generator_loss(fake_logits if args.fakes == "both" else fake_logits[b:], b)
            enc_grads = torch.autograd.grad(prior + llike, list(enc.parameters()), retain_graph=True)
            dec_grads = torch.autograd.grad(args.gamma * llike + g_gan, list(dec.parameters()))
            for net, grads, opt in ((enc, enc_grads, opt_e), (dec, dec_grads, opt_g)):
                for param, grad in zip(net.parameters(), grads, strict=True):
                    param.grad = grad
                opt.step()
            run.log(kl=prior, llike=llike, d=d_loss, g=g_gan)
        for sched in decay:
            sched.step()
        if run.frame_due:  # top half: reconstructions of test digits; bottom half: samples from fixed z
            with fm.evaluating(enc, dec):
                run.save_frame(torch.cat([reconstruct(orig), dec(fixed_z).sigmoid()]))

    with fm.evaluating(enc, dec):
        fm.save_grid(reconstruct(data.test_x[:64]), run.out / "recon.png")
        fm.save_grid(dec(noise(64)).sigmoid(), run.out / "sample.png")
        mse = fm.recon_mse(reconstruct, data.test_x)
        quality = fm.generator_metrics(lambda n: dec(noise(n)).sigmoid(), data)
    run.finish(gan=not args.no_gan, recon_mse=mse, **quality)


if __name__ == "__main__":
    main()
