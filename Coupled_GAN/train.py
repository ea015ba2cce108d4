"""Coupled GAN (Liu and Tuzel 2016): two GANs that learn a joint distribution of two domains from
samples of each alone. Page: Coupled_GAN/README.md

    python Coupled_GAN/train.py               # digits and their edges -> Coupled_GAN/samples/
    python Coupled_GAN/train.py --no-sharing  # two independent GANs, the counterfactual -> samples/no_sharing/
    python Coupled_GAN/train.py --task usps --epochs 32 --feature-weight 0.01 --class-weight 10 --zoom
                                              # MNIST -> USPS adaptation -> samples/usps/

Both generators read the same noise z and share every layer but their last; both discriminators
share every layer but their first (the same Parameter objects). The shared layers decode (and
read) what the two domains have in common, a digit's shape; only the layers at the pixels may
differ. So g1(z) and g2(z) come out as one digit rendered in each domain, though no pair of
corresponding images is ever seen.

Tasks (domain 1, domain 2):
    edges     MNIST digits and the edges of MNIST digits (`fm.edges`), from disjoint halves of the
              training set (30,000 each): the paper's "digits and edges"
    negative  MNIST digits and negatives, 1 - x, from the disjoint halves: the paper's second task
    usps      MNIST (labelled) and USPS (unlabelled, --usps-framing): the paper's domain adaptation.
              A linear head on the discriminators' shared features learns MNIST's labels alongside
              the GAN; through USPS's own first layer it then classifies USPS digits it never saw
              labelled (`adapted_acc`). As in the official code, the discriminators also learn to
              read a coupled pair alike, |h_1(g1(z)) - h_2(g2(z))|^2 on their shared features
              (`--feature-weight`), and the class loss is weighted (`--class-weight`). A USPS digit
              fills its frame where MNIST's sits in a 20-pixel box, which no 3x3 conv can rescale;
              with `--zoom` g2's pixels pass through, and D_2's input first meets, a learned zoom
              and shift (three numbers each), so that one shared digit can be drawn at both sizes

Networks (width w = 32; DCGAN's shapes for 32x32):
    generators      shared: z (100) -> 4x4 transposed conv to 4w x 4 x 4, three stride-2 4x4
                    transposed convs (2w, w, w/2; -> 32x32), BatchNorm and ReLU; each its own: a
                    stride-1 3x3 conv to the pixels, sigmoid. As in the paper, the shared layers
                    reach the pixels' resolution, so that both domains place a stroke where the
                    shared map puts it (a private stride-2 layer from 16x16 left each domain free
                    to draw its contour a pixel off the other's). With `--private-g-layers 2` the
                    16x16 -> 32x32 layer is each generator's own too, so that each can frame its
                    digit (a USPS digit fills the frame, MNIST's sits in a 20-pixel box)
    discriminators  each its own: a stride-2 4x4 conv (w, 32x32 -> 16x16), LeakyReLU 0.2, no
                    BatchNorm on the input (DCGAN's); shared: two stride-2 4x4 convs (2w, 4w; ->
                    4x4), BatchNorm and LeakyReLU, and a linear map of the 4w x 4 x 4 features to
                    one logit (and, for usps, to ten class logits). Each domain's batches go
                    through apart, so the shared BatchNorm's batch statistics are one domain's.
                    For usps the classifier's statistics are recomputed on each domain's own
                    training images before it is read (AdaBN, Li et al. 2016): the running ones
                    mix both domains, real and fake

Objective, the GAN of GAN/train.py for each domain i (one-sided label smoothing: real target 0.9):
    discriminators  sum_i -0.9 log sigma(D_i(x_i)) - 0.1 log(1 - sigma(D_i(x_i))) - log(1 - sigma(D_i(g_i(z))))
                    (+ lambda_c CE(head(x_1), label) on MNIST's labels + lambda_f |h_1(g1(z)) - h_2(g2(z))|^2,
                    for usps)
    generators      sum_i -log sigma(D_i(g_i(z)))
Adam 2e-4, betas (0.5, 0.999), for both, constant for the first half of the run, then linearly to
zero (CycleGAN's schedule: the pairs sharpen as the rate falls). An epoch is a pass over domain 2's
training images; domain 1's are drawn at random.

Pairs and figures come from an exponential moving average of the generators' weights (decay 0.999,
`fm.moving_average`, BatchNorm statistics recomputed by `fm.settle_batchnorm`), as GAN/train.py
samples its own; `metrics.json` gives the raw pair's figures under `raw_generators`, and
`process.gif` shows the raw pair as it trains.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm

TASKS = ("edges", "negative", "usps")


def negative(x):
    return 1 - x


PAIRED_VIEW = {"edges": fm.edges, "negative": negative}  # domain 2's image of a domain-1 digit
PAIRS = 10_000  # z measured for pair_agreement and pair_iou


def up(c_in, c_out):
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]


def down(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]


def generator_trunk(z_dim, w, private=1):
    """z -> features: every generator layer but the last `private` (w/2 x 32 x 32 for 1, w x 16 x 16 for 2)."""
    layers = [nn.ConvTranspose2d(z_dim, 4 * w, 4), nn.BatchNorm2d(4 * w), nn.ReLU(), *up(4 * w, 2 * w), *up(2 * w, w)]
    return nn.Sequential(*layers, *(up(w, w // 2) if private == 1 else []))


def generator_last(w, private=1):
    """A generator's own layers: a stride-1 3x3 conv to the pixels, after the transposed conv to 32x32 for 2."""
    return nn.Sequential(*(up(w, w // 2) if private == 2 else []), nn.Conv2d(w // 2, 1, 3, 1, 1), nn.Sigmoid())


class Zoom(nn.Module):
    """A learned zoom and shift of whole images, three numbers from the identity: the image is resampled at
    s (u, v) + t, (u, v) in [-1, 1]^2, so s < 1 magnifies and s > 1 shrinks (a spatial transformer of one affine
    map for every image)."""

    def __init__(self):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.shift = nn.Parameter(torch.zeros(2))

    def forward(self, x):
        scale = self.log_scale.exp()
        zero = torch.zeros_like(scale)
        theta = torch.stack([torch.stack([scale, zero, self.shift[0]]), torch.stack([zero, scale, self.shift[1]])])
        grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)

    def figures(self) -> dict:
        return {"scale": self.log_scale.exp().item(), "shift": self.shift.tolist()}


class CoupledGenerators(nn.Module):
    """(g1(z), g2(z)); without sharing, each generator has its own trunk; with `zoom`, g2 frames its images itself."""

    def __init__(self, z_dim=100, w=32, sharing=True, private=1, zoom=False):
        super().__init__()
        self.trunk1 = generator_trunk(z_dim, w, private)
        self.trunk2 = self.trunk1 if sharing else generator_trunk(z_dim, w, private)
        self.last1, self.last2 = generator_last(w, private), generator_last(w, private)
        if zoom:
            self.last2.append(Zoom())

    def forward(self, z):
        z = z[:, :, None, None]
        h1 = self.trunk1(z)
        h2 = h1 if self.trunk2 is self.trunk1 else self.trunk2(z)  # shared: one pass serves both
        return self.last1(h1), self.last2(h2)


def first_layer(w):
    """A discriminator's own layer: 32x32 pixels -> w x 16 x 16, no BatchNorm on the input (DCGAN's)."""
    return nn.Sequential(nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2))


class DiscriminatorTrunk(nn.Module):
    """Every discriminator layer but the first: w x 16 x 16 features -> (real logit, features)."""

    def __init__(self, w=32):
        super().__init__()
        self.features = nn.Sequential(*down(w, 2 * w), *down(2 * w, 4 * w), nn.Flatten())
        self.real = nn.Linear(4 * w * 16, 1)

    def forward(self, h):
        features = self.features(h)
        return self.real(features).flatten(), features


class CoupledDiscriminators(nn.Module):
    """D_1 and D_2 (`forward(x, domain)` gives logits and shared features); `digit`, for usps, classifies them.
    With `zoom`, D_2 first frames its images itself."""

    def __init__(self, w=32, sharing=True, classes=0, zoom=False):
        super().__init__()
        self.first1, self.first2 = first_layer(w), first_layer(w)
        if zoom:
            self.first2.insert(0, Zoom())
        self.trunk1 = DiscriminatorTrunk(w)
        self.trunk2 = self.trunk1 if sharing else DiscriminatorTrunk(w)
        self.digit = nn.Linear(4 * w * 16, classes) if classes else None

    def path(self, domain: int):
        """Domain 1's or domain 2's first layer and trunk."""
        return (self.first1, self.trunk1) if domain == 1 else (self.first2, self.trunk2)

    def forward(self, x, domain: int):
        first, trunk = self.path(domain)
        return trunk(first(x))

    def classifier(self, domain: int) -> nn.Module:
        """Domain's first layer, the shared features and the class head, as one module of the same Parameters."""
        first, trunk = self.path(domain)
        return nn.Sequential(first, trunk.features, self.digit)


ZOOM_LR_FACTOR = 10


def optimiser(module: nn.Module, lr: float) -> torch.optim.Adam:
    """Adam, (0.5, 0.999); a Zoom's numbers at ZOOM_LR_FACTOR times the rate: one global scale has to travel
    about 0.47 in log space (a digit's 20-pixel box to a full frame), which at 2e-4 a step would take most of the run.
    """
    zooms = [p for m in module.modules() if isinstance(m, Zoom) for p in m.parameters()]
    rest = [p for p in module.parameters() if all(p is not q for q in zooms)]
    groups = [{"params": rest}] + ([{"params": zooms, "lr": lr * ZOOM_LR_FACTOR}] if zooms else [])
    return torch.optim.Adam(groups, lr=lr, betas=(0.5, 0.999))


REAL_TARGET = 0.9  # one-sided label smoothing, as GAN/train.py: the fakes' target stays 0


def discriminator_loss(real_logits, fake_logits):
    """Summed over the domains: cross-entropy against 0.9 for real images, 0 for fakes, each a batch mean."""
    loss = 0
    for real, fake in zip(real_logits, fake_logits, strict=True):
        loss = loss + F.binary_cross_entropy_with_logits(real, torch.full_like(real, REAL_TARGET))
        loss = loss + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    return loss


def feature_alignment(features1, features2):
    """|h_1(g1(z)) - h_2(g2(z))|^2, summed over the shared features and averaged over the batch: a coupled pair
    should read the same to the shared layers, which teaches each domain's first layer to agree with the other's."""
    return (features1 - features2).pow(2).sum(1).mean()


def generator_loss(fake_logits):
    """Summed over the domains: -log sigma(D_i(g_i(z))), the non-saturating loss."""
    return sum(F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)) for fake in fake_logits)


def train_source_only(classifier, images, labels, steps, batch_size, lr):
    """The usps baseline: the MNIST path of fresh discriminators and the head, trained on MNIST's labels
    alone (no GAN) for as many steps as the run."""
    opt = torch.optim.Adam(classifier.parameters(), lr=lr, betas=(0.5, 0.999))
    for _ in range(steps):
        picked = torch.randint(len(images), (batch_size,), device=images.device)
        loss = F.cross_entropy(classifier(images[picked]), labels[picked])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def variant_folder(args) -> str:
    """samples/ for the default; otherwise the task's name, then no_sharing (negative_no_sharing...)."""
    parts = [args.task] if args.task != "edges" else []
    return "_".join(parts + ["no_sharing"] * args.no_sharing)


def main():
    p = fm.parser(
        __file__,
        "Train a Coupled GAN.",
        epochs=12,
        batch_size=64,
        lr=2e-4,
        subfolder=variant_folder,
    )
    p.add_argument("--task", choices=TASKS, default="edges", help="the pair of domains (see the docstring)")
    p.add_argument("--no-sharing", action="store_true", help="share no layer: two independent GANs")
    p.add_argument("--usps-framing", choices=fm.USPS_FRAMINGS, default="full", help="--task usps: USPS's framing")
    p.add_argument("--width", type=fm.positive_int, default=32, help="channels of the first layer")
    p.add_argument("--z-dim", type=fm.positive_int, default=100, help="size of the shared noise vector")
    p.add_argument(
        "--private-g-layers",
        type=int,
        choices=[1, 2],
        default=1,
        help="generator layers kept per domain (the paper: 1)",
    )
    p.add_argument(
        "--zoom",
        action="store_true",
        help="domain 2's framing learned: g2 ends, and D_2 begins, with a zoom and shift of its own (not the paper's)",
    )
    p.add_argument(
        "--feature-weight",
        type=fm.non_negative_float,
        default=0.0,
        help="--task usps: weight of |h_1(g1(z)) - h_2(g2(z))|^2 on D's shared features (the official code: 0.01)",
    )
    p.add_argument(
        "--class-weight",
        type=fm.positive_float,
        default=1.0,
        help="--task usps: weight of the class loss (the official code: 10)",
    )
    args = p.parse_args()
    if args.task == "usps" and args.no_sharing:
        fm.fail("argument --no-sharing: --task usps reads USPS through the shared layers, so it needs them")
    run = fm.Run(args)
    mnist = run.load_data("MNIST", epoch=False)
    if args.task == "usps":
        usps = run.load_data("USPS", framing=args.usps_framing)
        first, first_labels, second = mnist.train_x, mnist.train_y, usps.train_x
    else:
        half = len(mnist.train_x) // 2  # disjoint halves: no digit is seen in both domains
        first, second = mnist.train_x[:half], PAIRED_VIEW[args.task](mnist.train_x[half:])
        run.epoch_over(second)
    sharing = not args.no_sharing
    gen = run.to_device(CoupledGenerators(args.z_dim, args.width, sharing, args.private_g_layers, args.zoom))
    classes = 10 if args.task == "usps" else 0
    disc = run.to_device(CoupledDiscriminators(args.width, sharing, classes, args.zoom))
    opt_g, opt_d = optimiser(gen, args.lr), optimiser(disc, args.lr)
    decay = run.linear_decay(opt_g, opt_d)
    gen_avg = fm.moving_average(gen)  # what is sampled and measured at the end
    run.track(gen=gen, gen_avg=gen_avg, disc=disc, opt_g=opt_g, opt_d=opt_d, sched_g=decay[0], sched_d=decay[1])
    fixed_z = torch.randn(64, args.z_dim, device=run.device)
    fm.save_grid(torch.cat([first[:32], second[:32]]), run.out / "real.png")

    def noise(n):
        return torch.randn(n, args.z_dim, device=run.device)

    def pairs_grid(g):
        """Rows of 8: g1(z) over g2(z), for the 64 fixed z."""
        return fm.interleaved_rows(*g(fixed_z))

    def generated_figures(g):
        """g1's digits as every generator's, and how well the pairs agree: pixel by pixel for edges and negative,
        digit by digit for usps (the evaluator reads g2's USPS digits framed as MNIST's)."""
        figures = fm.generator_metrics(lambda n: g(noise(n))[0], mnist)
        samples = fm.translate(lambda z: torch.cat(g(z), 1), noise(PAIRS))
        if args.task == "usps":
            second = samples[:, 1:] if args.usps_framing == "mnist" else fm.full_to_mnist_framing(samples[:, 1:])
            figures["pair_digit_agreement"] = fm.pair_digit_agreement(samples[:, :1], second)
        else:
            figures |= fm.pair_metrics(PAIRED_VIEW[args.task](samples[:, :1]), samples[:, 1:])
        return figures

    for x2 in run.batches(second):
        picked = torch.randint(len(first), (len(x2),), device=run.device)
        x1 = first[picked]
        fake1, fake2 = gen(noise(len(x2)))
        real1, features1 = disc(x1, 1)
        fake1_logits, fake1_features = disc(fake1.detach(), 1)
        fake2_logits, fake2_features = disc(fake2.detach(), 2)
        d_loss = discriminator_loss([real1, disc(x2, 2)[0]], [fake1_logits, fake2_logits])
        losses = {"d": d_loss}
        if args.task == "usps":
            class_loss = F.cross_entropy(disc.digit(features1), first_labels[picked])
            d_loss = d_loss + args.class_weight * class_loss
            losses["class"] = class_loss
            if args.feature_weight:
                align = feature_alignment(fake1_features, fake2_features)
                d_loss = d_loss + args.feature_weight * align
                losses["align"] = align
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = generator_loss([disc(fake1, 1)[0], disc(fake2, 2)[0]])
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for sched in decay:
            sched.step()
        gen_avg.update_parameters(gen)
        run.log(**losses, g=g_loss)
        if run.frame_due:
            with fm.evaluating(gen):
                run.save_frame(pairs_grid(gen))

    fm.settle_batchnorm(gen_avg, noise)
    with fm.evaluating(gen, gen_avg, disc):
        fm.save_grid(pairs_grid(gen_avg), run.out / "pairs.png")
        figures = generated_figures(gen_avg)
        figures["raw_generators"] = generated_figures(gen)
        if args.task == "usps":
            for domain, data, key in ((2, usps, "adapted_acc"), (1, mnist, "mnist_test_acc")):
                classifier = disc.classifier(domain)
                fm.settle_batchnorm(
                    classifier,
                    lambda n, x=data.train_x: x[torch.randint(len(x), (n,), device=x.device)],
                    len(usps.train_x),
                )
                figures[key] = fm.accuracy(classifier, data.test_x, data.test_y)
        else:
            view = PAIRED_VIEW[args.task]
            floor = fm.pair_metrics(view(mnist.test_x), view(mnist.test_x.roll(1, 0)))  # mismatched real digits
            figures |= {f"{key}_floor": value for key, value in floor.items()}
    if args.task == "usps":
        baseline = run.to_device(CoupledDiscriminators(args.width, classes=10)).classifier(1)
        train_source_only(baseline, mnist.train_x, mnist.train_y, run.step, args.batch_size, args.lr)
        figures["source_acc"] = fm.evaluator_test_acc(usps)  # the evaluator on untranslated USPS
        figures["source_classifier_acc"] = fm.accuracy(baseline, usps.test_x, usps.test_y)
    if args.zoom:  # the framing each side learnt: g2's scale below 1 magnifies, D_2's above 1 shrinks
        figures["zoom"] = {"generator": gen.last2[-1].figures(), "discriminator": disc.first2[0].figures()}
    run.finish(**figures, task=args.task, sharing=sharing)


if __name__ == "__main__":
    main()
