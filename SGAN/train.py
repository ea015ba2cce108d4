"""Semi-supervised learning with a GAN (Salimans et al. 2016, "Improved techniques for training GANs").

    python SGAN/train.py              # 100 labels -> SGAN/samples/
    python SGAN/train.py --no-gan     # the same classifier on the 100 labelled images alone -> SGAN/samples/no_gan/

Only --labels training labels are used (10 per class, chosen by --seed); the other images are
unlabelled. The discriminator is the classifier: K = 10 logits l(x), and with
Z(x) = sum_k exp(l_k(x)) the probability that x is real is D(x) = Z(x) / (Z(x) + 1): a fake
class whose logit is fixed at 0.

Networks, the paper's for MNIST on the flat 28x28 digit:
    discriminator  Gaussian noise (std 0.3) on the input, then 1000-500-250-250-250 ReLU layers, each
                   with Gaussian noise (0.5) on its input, and a linear layer to the 10 logits; every
                   linear layer weight-normalised. Its last hidden layer f(x) is what the generator matches.
    generator      z (100) -> 500 -> 500 (BatchNorm, softplus) -> 784, weight-normalised, sigmoid
Noise is on in training only.

Objective:
    discriminator  CE(l(x_lab), y)  +  1/2 [-log D(x) - log(1 - D(G(z)))]
                   where -log D(x) = softplus(lse(x)) - lse(x), -log(1 - D(x)) = softplus(lse(x)),
                   lse = logsumexp of the logits
    generator      feature matching: mean over features of (E f(x) - E f(G(z)))^2
The unlabelled term teaches the classifier what digits look like; feature matching makes the
generator's images pull the features towards the data's, which the paper found best for
classification (not for the samples' looks). Adam 3e-3, betas (0.5, 0.999), cosine decay; each
step a batch of 100 unlabelled images and 100 labelled ones drawn from the --labels.
With --no-gan, the same discriminator, the same steps and the same labelled batches, the
cross-entropy alone.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm

import funmnist as fm


class GaussianNoise(nn.Module):
    def __init__(self, std):
        super().__init__()
        self.std = std

    def forward(self, x):
        return x + self.std * torch.randn_like(x) if self.training else x


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        layers, width = [GaussianNoise(0.3)], 784
        for out in (1000, 500, 250, 250, 250):
            layers += [weight_norm(nn.Linear(width, out)), nn.ReLU(), GaussianNoise(0.5)]
            width = out
        self.features = nn.Sequential(*layers[:-1])  # f(x): the last hidden layer, before its noise
        self.head = nn.Sequential(layers[-1], weight_norm(nn.Linear(width, 10)))

    def forward(self, x):
        """The 10 class logits."""
        return self.head(self.features(x))


class Generator(nn.Module):
    def __init__(self, z_dim=100):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(z_dim, 500), nn.BatchNorm1d(500), nn.Softplus(),
            nn.Linear(500, 500), nn.BatchNorm1d(500), nn.Softplus(),
            weight_norm(nn.Linear(500, 784)), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, z):
        return self.net(z)


def unsupervised_loss(real_logits, fake_logits):
    """1/2 [-log D(x) - log(1 - D(G(z)))] with D = Z / (Z + 1), Z the sum of the exponentiated logits."""
    lse_real, lse_fake = real_logits.logsumexp(1), fake_logits.logsumexp(1)
    real = (F.softplus(lse_real) - lse_real).mean()
    return 0.5 * (real + F.softplus(lse_fake).mean())


def feature_matching(real_features, fake_features):
    """Mean over features of the squared difference between the batches' mean features."""
    return (real_features.mean(0) - fake_features.mean(0)).pow(2).mean()


def main():
    p = fm.parser(
        __file__,
        "Train a semi-supervised GAN (or, with --no-gan, its classifier on the labels alone).",
        epochs=30,
        batch_size=100,
        lr=3e-3,
        subfolder=lambda a: "no_gan" if a.no_gan else "",
    )
    p.add_argument("--labels", type=fm.positive_int, default=100, help="labelled training images, a multiple of 10")
    p.add_argument("--no-gan", action="store_true", help="train the classifier on the labelled images only")
    p.add_argument("--z-dim", type=fm.positive_int, default=100, help="size of the noise vector")
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    images, test_x = fm.flat_digits(data.train_x), fm.flat_digits(data.test_x)
    chosen = fm.balanced_subset(data.train_y, args.labels)
    lab_x, lab_y = images[chosen], data.train_y[chosen]
    disc = run.to_device(Discriminator())
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999))
    sched_d = torch.optim.lr_scheduler.CosineAnnealingLR(opt_d, run.total_steps)
    tracked = {"disc": disc, "opt_d": opt_d, "sched_d": sched_d}
    if not args.no_gan:
        gen = run.to_device(Generator(args.z_dim))
        opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.999))
        sched_g = torch.optim.lr_scheduler.CosineAnnealingLR(opt_g, run.total_steps)
        tracked |= {"gen": gen, "opt_g": opt_g, "sched_g": sched_g}
        fixed_z = torch.randn(100, args.z_dim, device=run.device)
    run.track(**tracked)
    fm.save_grid(fm.pad_flat_digits(lab_x), run.out / "real.png", nrow=10)

    for x in run.batches(images):
        pick = torch.randint(len(lab_x), (len(x),), device=run.device)
        supervised = F.cross_entropy(disc(lab_x[pick]), lab_y[pick])
        if args.no_gan:
            d_loss = supervised
        else:
            fake = gen(torch.randn(len(x), args.z_dim, device=run.device))
            unsupervised = unsupervised_loss(disc(x), disc(fake.detach()))
            d_loss = supervised + unsupervised
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        sched_d.step()
        if args.no_gan:
            run.log(supervised=supervised)
        else:
            g_loss = feature_matching(disc.features(x).detach(), disc.features(fake))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            sched_g.step()
            run.log(supervised=supervised, unsupervised=unsupervised, g=g_loss)
            if run.frame_due:
                with fm.evaluating(gen):
                    run.save_frame(fm.pad_flat_digits(gen(fixed_z)), nrow=10)
        if run.epoch_done:
            run.log_epoch(test_acc=fm.accuracy(disc, test_x, data.test_y))

    if not args.no_gan:
        with fm.evaluating(gen):
            fm.save_grid(fm.pad_flat_digits(gen(fixed_z)), run.out / "sample.png", nrow=10)
    epochs = [e["epoch"] for e in run.epoch_log]
    curve = {"test": (epochs, [e["test_acc"] for e in run.epoch_log])}
    fm.plot_curves(
        run.out / "accuracy.png", curve, "epoch", "accuracy", title="labels alone" if args.no_gan else "SGAN"
    )
    run.finish(gan=not args.no_gan, labels=args.labels, test_acc=fm.accuracy(disc, test_x, data.test_y))


if __name__ == "__main__":
    main()
