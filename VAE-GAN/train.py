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
    L_GAN   = log D(x) + log(1 - D(x~)) + log(1 - D(x_p))
each network descends its own share (the paper's split):
    encoder        L_prior + L_llike
    decoder        gamma L_llike - L_GAN           (as usual, -log D(fake) instead of log(1 - D(fake)))
    discriminator  -L_GAN
Sums run over latent dimensions and features; everything is averaged over the batch. The
discriminator sees real images, reconstructions and samples in one batch, and the decoder makes
reconstructions and samples in one batch, so that BatchNorm normalises them alike.
Adam (0.5, 0.999): 2e-4 for encoder and decoder, 2e-5 for the discriminator, so that a stronger
discriminator does not drown the decoder's samples (its page: why the defaults).
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


def main():
    p = fm.parser(
        __file__,
        "Train a VAE-GAN (or, with --no-gan, the same VAE with a pixel loss).",
        epochs=5,
        batch_size=64,
        lr=2e-4,
        subfolder=lambda a: "no_gan" if a.no_gan else "",
    )
    p.add_argument("--lr-d", type=fm.positive_float, default=2e-5, help="the discriminator's learning rate")
    p.add_argument("--latent-dim", type=fm.positive_int, default=32, help="size of z")
    p.add_argument("--gamma", type=fm.positive_float, default=0.01, help="weight of L_llike for the decoder")
    p.add_argument("--no-gan", action="store_true", help="train a plain VAE: pixel likelihood, no discriminator")
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    nets = Encoder(args.latent_dim), Decoder(args.latent_dim), Discriminator()
    enc, dec, disc = (run.to_device(net) for net in nets)
    opt_e = torch.optim.Adam(enc.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(dec.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr_d, betas=(0.5, 0.999))
    run.track(enc=enc, dec=dec, disc=disc, opt_e=opt_e, opt_g=opt_g, opt_d=opt_d)
    orig = data.test_x[:32]
    fixed_z = torch.randn(32, args.latent_dim, device=run.device)
    fm.save_grid(data.test_x[:64], run.out / "orig.png")

    def reconstruct(x):
        return dec(enc(x)[0]).sigmoid()  # from the mean code

    def sample(n):
        return dec(torch.randn(n, args.latent_dim, device=run.device)).sigmoid()

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
            real, fake = torch.ones(b, device=run.device), torch.zeros(2 * b, device=run.device)
            # discriminator: real images (1) against reconstructions and samples (0)
            logits = disc(torch.cat([x, x_rec.detach(), x_p.detach()]))[1]
            d_loss = F.binary_cross_entropy_with_logits(logits, torch.cat([real, fake]), reduction="sum") / b
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            # encoder and decoder, each on its own share of the losses
            features, logits = disc(torch.cat([x, x_rec, x_p]))
            llike = 0.5 * (features[b : 2 * b] - features[:b]).pow(2).sum(1).mean()
            g_gan = F.binary_cross_entropy_with_logits(logits[b:], 1 - fake, reduction="sum") / b
            enc_grads = torch.autograd.grad(prior + llike, list(enc.parameters()), retain_graph=True)
            dec_grads = torch.autograd.grad(args.gamma * llike + g_gan, list(dec.parameters()))
            for net, grads, opt in ((enc, enc_grads, opt_e), (dec, dec_grads, opt_g)):
                for param, grad in zip(net.parameters(), grads, strict=True):
                    param.grad = grad
                opt.step()
            run.log(kl=prior, llike=llike, d=d_loss, g=g_gan)
        if run.frame_due:  # top half: reconstructions of test digits; bottom half: samples from fixed z
            with fm.evaluating(enc, dec):
                run.save_frame(torch.cat([reconstruct(orig), dec(fixed_z).sigmoid()]))

    with fm.evaluating(enc, dec):
        fm.save_grid(reconstruct(data.test_x[:64]), run.out / "recon.png")
        fm.save_grid(sample(64), run.out / "sample.png")
        mse = fm.recon_mse(reconstruct, data.test_x)
        quality = fm.generator_metrics(sample, data)
    run.finish(gan=not args.no_gan, recon_mse=mse, **quality)


if __name__ == "__main__":
    main()
