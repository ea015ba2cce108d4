"""InfoGAN (Chen et al. 2016) on the DCGAN-style pair of the original README.

    python InfoGAN/train.py        # -> InfoGAN/samples/

The generator's input is split in three: noise z (62), a categorical code c1 (one of 10, one-hot)
and two continuous codes c2, c3 ~ U(-1, 1). No label is ever used: the game makes the codes mean
something, by rewarding images from which the codes can be read back.

Networks (channels 32-256, half the original's 64-512, so that the default run fits its time on a CPU):
    generator      [z, onehot(c1), c2, c3] (74) -> 2x2 transposed conv -> four stride-2 4x4 transposed convs
                   with BatchNorm and ReLU between them, sigmoid on the pixels
    discriminator  four stride-2 4x4 convs, 32x32 -> 2x2, with LeakyReLU(0.2) and BatchNorm (the trunk),
                   then a 2x2 conv to the real/fake logit
    Q              on the same trunk: a 2x2 conv to 128 features, BatchNorm, LeakyReLU, and a linear layer
                   to 10 logits for c1 and the means of c2 and c3

Objective: the GAN game plus lambda times the information loss L_I, a lower bound on the mutual
information I(c; G(z, c)) with its sign turned (up to the codes' constant entropy):
    L_I = CE(Q_c1(G(z, c)), c1) + sum_j [ (c_j - mu_j)^2 / 2 + ln(2 pi) / 2 ]   for j = 2, 3
i.e. the negative log-likelihood of the codes under Q: a categorical for c1, and unit-variance
Gaussians for c2 and c3 (the paper found a fixed variance sufficient). A split of the images by
style (slant, width, stroke) is read back as surely as a split by digit, so L_I alone cannot prefer
the digits; which split a run finds depends on its seed. Added to L_I, with weight mu, c1 read
through a nuisance transform T of the image (`distort`: a random small rotation, scaling and shift,
and a thicker or thinner stroke), L_T = CE(Q_c1(T(G(z, c))), c1): a style that T changes no longer
pays, a digit still does (close to Elastic-InfoGAN's consistency term, Ojha et al. 2020).
    discriminator and Q  -s log sigma(D(x)) - (1 - s) log(1 - sigma(D(x))) - log(1 - sigma(D(G(z, c))))
                         + lambda (L_I + mu L_T)
    generator            -log sigma(D(G(z, c))) + lambda (L_I + mu L_T)
with one-sided label smoothing s = 0.9, the real images' target (Salimans et al. 2016; see GAN/train.py),
which keeps the discriminator from slowly winning (its page: why the defaults).
lambda = 1, mu = 2. Adam with betas (0.5, 0.999): 2e-4 for the discriminator and Q, 1e-3 for the generator,
the paper's settings for MNIST.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm

CATEGORIES = 10
CONTINUOUS = 2
REAL_TARGET = 0.9  # one-sided label smoothing, as in GAN/train.py: the fakes' target stays 0


class Discriminator(nn.Module):
    """The real/fake logit and, from the same trunk, Q's categorical logits and continuous means."""

    def __init__(self, w=32, q_hidden=128):
        super().__init__()

        def down(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2), nn.BatchNorm2d(c_out)]

        self.trunk = nn.Sequential(*down(1, w), *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w))
        self.source = nn.Conv2d(8 * w, 1, 2)
        if q_hidden:
            head = [nn.Conv2d(8 * w, q_hidden, 2), nn.BatchNorm2d(q_hidden), nn.LeakyReLU(0.2), nn.Flatten()]
            self.q = nn.Sequential(*head, nn.Linear(q_hidden, CATEGORIES + CONTINUOUS))
        else:  # Q linear in the trunk's features, as the source logit is
            self.q = nn.Sequential(nn.Conv2d(8 * w, CATEGORIES + CONTINUOUS, 2), nn.Flatten())

    def forward(self, x):
        """(real/fake logit (N,), categorical logits (N, 10), continuous means (N, 2))."""
        features = self.trunk(x)
        q = self.q(features)
        return self.source(features).flatten(), q[:, :CATEGORIES], q[:, CATEGORIES:]


class Generator(nn.Module):
    def __init__(self, z_dim=62, w=32):
        super().__init__()

        def up(c_in, c_out):
            return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim + CATEGORIES + CONTINUOUS, 8 * w, 2),
            nn.BatchNorm2d(8 * w),
            nn.ReLU(),
            *up(8 * w, 4 * w),
            *up(4 * w, 2 * w),
            *up(2 * w, w),
            nn.ConvTranspose2d(w, 1, 4, 2, 1),
            nn.Sigmoid(),
        )

    def forward(self, z, category, continuous):
        codes = torch.cat([z, F.one_hot(category, CATEGORIES).to(z.dtype), continuous], 1)
        return self.net(codes[:, :, None, None])


def information_loss(category_logits, category, means, continuous, continuous_weight=1.0):
    """-log Q(c | x): cross-entropy for c1 plus continuous_weight times the unit-variance Gaussian NLL
    of c2, c3; batch mean."""
    gaussian_nll = ((continuous - means).pow(2) / 2 + math.log(2 * math.pi) / 2).sum(1).mean()
    return F.cross_entropy(category_logits, category) + continuous_weight * gaussian_nll


def distort(x):
    """T: each image rotated by up to 20 degrees, scaled by 0.85 to 1.15 and shifted by up to 2 pixels, then,
    a third each, left as it is, thickened (a 3x3 dilation) or thinned (half a 3x3 erosion: a whole one
    erases the thinnest strokes)."""
    n = len(x)

    def uniform(low, high):
        return low + (high - low) * torch.rand(n, device=x.device)

    angle, scale = uniform(-math.pi / 9, math.pi / 9), uniform(0.85, 1.15)
    cos, sin = angle.cos() / scale, angle.sin() / scale
    shift = [uniform(-2 / 16, 2 / 16) for _ in "xy"]  # 2 pixels in normalised coordinates (16 pixels per unit)
    theta = torch.stack([torch.stack([cos, -sin, shift[0]], 1), torch.stack([sin, cos, shift[1]], 1)], 1)
    moved = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
    thick = F.max_pool2d(moved, 3, 1, 1)
    thin = (moved - F.max_pool2d(-moved, 3, 1, 1)) / 2
    stroke = torch.randint(3, (n, 1, 1, 1), device=x.device)
    return torch.where(stroke == 0, moved, torch.where(stroke == 1, thick, thin))


def main():
    p = fm.parser(__file__, "Train an InfoGAN.", epochs=5, batch_size=64, lr=2e-4)
    p.add_argument("--lr-g", type=fm.positive_float, default=1e-3, help="the generator's learning rate")
    p.add_argument("--z-dim", type=fm.positive_int, default=62, help="size of the noise vector")
    p.add_argument("--info-weight", type=fm.positive_float, default=1.0, help="lambda, the information loss's weight")
    p.add_argument(
        "--q-hidden",
        type=fm.non_negative_int,
        default=128,
        help="width of Q's hidden layer on the discriminator's trunk; 0: Q is linear in the trunk's features",
    )
    p.add_argument(
        "--continuous-weight",
        type=fm.positive_float,
        default=1.0,
        help="weight of the continuous codes' term within the information loss (the categorical's is 1)",
    )
    p.add_argument(
        "--invariance-weight",
        type=fm.non_negative_float,
        default=2.0,
        help="mu, the weight of c1 read through a nuisance transform (L_T); 0: the paper's InfoGAN",
    )
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    gen, disc = run.to_device(Generator(args.z_dim)), run.to_device(Discriminator(q_hidden=args.q_hidden))
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999))
    run.track(gen=gen, disc=disc, opt_g=opt_g, opt_d=opt_d)
    # Figures, ten by ten: row r has c1 = r. In categorical.png each column keeps one noise vector;
    # in continuous_j.png each row keeps one and c_j is swept along it, beyond the U(-1, 1) of training.
    rows = torch.arange(CATEGORIES, device=run.device).repeat_interleave(10)
    noise = torch.randn(10, args.z_dim, device=run.device)
    column_z, row_z = noise.repeat(CATEGORIES, 1), noise.repeat_interleave(10, 0)
    sweep = torch.linspace(-2, 2, 10, device=run.device).repeat(CATEGORIES)
    no_continuous = torch.zeros(len(rows), CONTINUOUS, device=run.device)
    fm.save_grid(data.train_x[:64], run.out / "real.png")

    def codes(n):
        category = torch.randint(CATEGORIES, (n,), device=run.device)
        return category, torch.rand(n, CONTINUOUS, device=run.device) * 2 - 1

    def sample(n):
        return gen(torch.randn(n, args.z_dim, device=run.device), *codes(n))

    for x in run.batches(data.train_x):
        category, continuous = codes(len(x))
        fake = gen(torch.randn(len(x), args.z_dim, device=run.device), category, continuous)
        real_logits = disc(x)[0]
        fake_logits, category_logits, means = disc(fake.detach())
        info_d = information_loss(category_logits, category, means, continuous, args.continuous_weight)
        if args.invariance_weight:
            info_d = info_d + args.invariance_weight * F.cross_entropy(disc(distort(fake.detach()))[1], category)
        d_loss = (
            F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, REAL_TARGET))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            + args.info_weight * info_d
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        fake_logits, category_logits, means = disc(fake)
        info = information_loss(category_logits, category, means, continuous, args.continuous_weight)
        if args.invariance_weight:
            info = info + args.invariance_weight * F.cross_entropy(disc(distort(fake))[1], category)
        g_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits)) + args.info_weight * info
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        run.log(d=d_loss, g=g_loss, info=info)
        if run.frame_due:
            with fm.evaluating(gen):
                run.save_frame(gen(column_z, rows, no_continuous), nrow=10)

    with fm.evaluating(gen, disc):
        fm.save_grid(gen(column_z, rows, no_continuous), run.out / "categorical.png", nrow=10)
        for j in range(CONTINUOUS):
            continuous = no_continuous.clone()
            continuous[:, j] = sweep
            fm.save_grid(gen(row_z, rows, continuous), run.out / f"continuous_{j + 1}.png", nrow=10)
        predicted = torch.cat([disc(data.test_x[i : i + 1000])[1].argmax(1) for i in range(0, len(data.test_x), 1000)])
        quality = fm.generator_metrics(sample, data)
    run.finish(**quality, code_acc=fm.code_acc(predicted.cpu().numpy(), data.test_y.cpu().numpy()))


if __name__ == "__main__":
    main()
