"""Variational autoencoder (Kingma & Welling 2014), fully connected as the original README's.

    python VAE/train.py                   # 2-d latent  -> VAE/samples/latent_2/ (with manifold.png)
    python VAE/train.py --latent-dim 20   # 20-d latent -> VAE/samples/latent_20/

Networks, on the 28x28 digit (the 2-pixel border of the 32x32 image is always 0):
    encoder  784 -> 400 (ReLU) -> mu (d), log sigma^2 (d)
    decoder  d -> 400 (ReLU) -> 784 logits; the sigmoid of a logit is the pixel's Bernoulli mean

Objective: the negative ELBO, per image, summed over pixels and latent dimensions, then averaged
over the batch:
    -ELBO(x) = sum_pixels BCE(x, p(x|z)) + KL(q(z|x) || N(0, I)),   z = mu + sigma * eps
    KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)
The pixels are grey levels in [0, 1] used as Bernoulli targets, as in the original and in
pytorch/examples. `test_elbo` is the mean ELBO of the test images (one z per image), in nats.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm


class VAE(nn.Module):
    def __init__(self, latent_dim):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 2 * latent_dim))
        self.dec = nn.Sequential(nn.Linear(latent_dim, 400), nn.ReLU(), nn.Linear(400, 784))

    def forward(self, x):
        """Pixel logits, mu and log sigma^2 for flat digits x."""
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.dec(z), mu, logvar


def kl_divergence(mu, logvar):
    """KL(N(mu, sigma^2) || N(0, I)) per image, summed over latent dimensions."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


def negative_elbo(x, logits, mu, logvar):
    """Per-image -ELBO in nats: Bernoulli reconstruction summed over pixels, plus KL."""
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    return bce + kl_divergence(mu, logvar)


def main():
    p = fm.parser(
        __file__,
        "Train a fully connected VAE.",
        epochs=30,
        batch_size=128,
        lr=1e-3,
        subfolder=lambda a: f"latent_{a.latent_dim}",
    )
    p.add_argument("--latent-dim", type=fm.positive_int, default=2, help="size of z (a manifold figure if 2)")
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    vae = run.to_device(VAE(args.latent_dim))
    opt = torch.optim.Adam(vae.parameters(), lr=args.lr)
    run.track(vae=vae, opt=opt)
    orig = data.test_x[:64]
    fm.save_grid(orig, run.out / "orig.png")

    for x in run.batches(data.train_x):
        logits, mu, logvar = vae(fm.flat_digits(x))
        loss = negative_elbo(fm.flat_digits(x), logits, mu, logvar).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.log(neg_elbo=loss, kl=kl_divergence(mu, logvar).mean())
        if run.frame_due:
            with fm.evaluating(vae):
                run.save_frame(fm.pad_flat_digits(vae(fm.flat_digits(orig))[0].sigmoid()))

    def decode(z):
        return fm.pad_flat_digits(vae.dec(z).sigmoid())

    # recon_mse decodes the mean code; the ELBO draws one z per image
    with fm.evaluating(vae):
        test = fm.flat_digits(data.test_x)
        elbo = -negative_elbo(test, *vae(test)).mean().item()
        mse = fm.recon_mse(lambda x: decode(vae.enc(fm.flat_digits(x)).chunk(2, dim=1)[0]), data.test_x)
        fixed = torch.randn(64, args.latent_dim, device=run.device)
        fm.save_grid(decode(fixed), run.out / "sample.png")
        if args.latent_dim == 2:  # a 20x20 grid of uniform (0,1) points, mapped to N(0,1) by the inverse CDF
            u = (torch.arange(20, device=run.device) + 0.5) / 20
            z = torch.distributions.Normal(0.0, 1.0).icdf(u)
            z2, z1 = torch.meshgrid(z.flip(0), z, indexing="ij")  # z2 grows upwards, z1 to the right
            fm.save_grid(decode(torch.stack([z1.flatten(), z2.flatten()], 1)), run.out / "manifold.png", nrow=20)
        quality = fm.generator_metrics(lambda k: decode(torch.randn(k, args.latent_dim, device=run.device)), data)
    run.finish(latent_dim=args.latent_dim, test_elbo=elbo, recon_mse=mse, **quality)


if __name__ == "__main__":
    main()
