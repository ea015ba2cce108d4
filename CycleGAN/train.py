"""CycleGAN (Zhu et al. 2017): unpaired translation between USPS and MNIST digits. Page: CycleGAN/README.md

    python CycleGAN/train.py        # -> CycleGAN/samples/

Two generators, G: USPS -> MNIST and F: MNIST -> USPS, and two discriminators, D_M on MNIST and
D_U on USPS. No digit is ever paired with its translation, and USPS's labels are never read in
training (only the test figures read them).

Networks, the paper's shapes sized for 32x32 and a CPU (widths --width 16 and --d-width 64; the paper: 64):
    generator      3x3 conv w, two stride-2 4x4 convs (2w, 4w; 32x32 -> 16 -> 8), --res-blocks 3
                   residual blocks at 8x8 (the paper: 6 or 9), two stride-2 4x4 transposed convs
                   back to 32x32, a 3x3 conv to the pixels, sigmoid; InstanceNorm and ReLU between
    discriminator  a PatchGAN: three stride-2 4x4 convs (w, 2w, 4w; LeakyReLU 0.2, InstanceNorm
                   after the first), then a 3x3 conv to a 4x4 map of logits, one per overlapping patch

Objective (least-squares GAN, as the paper's; x a USPS digit, y an MNIST digit):
    D_M            (D_M(y) - 1)^2 + D_M(G(x))^2                 (halved; G(x) from the replay buffer)
    G and F        (D_M(G(x)) - 1)^2 + (D_U(F(y)) - 1)^2
                   + lambda_cyc (|F(G(x)) - x|_1 + |G(F(y)) - y|_1)        lambda_cyc = 10
                   + lambda_id  (|G(y) - y|_1 + |F(x) - x|_1)              lambda_id = 0 (--identity-weight)
and D_U likewise. The discriminators see fakes from a replay buffer of the last 50 (--buffer): each
fake replaces a random stored one half of the time, which is then shown instead. Adam 2e-4,
betas (0.5, 0.999), constant for the first half of the run, then linearly to zero (the paper's).
G and F translate and are measured as exponential moving averages of their weights (decay 0.999,
`fm.moving_average`), as the GANs here sample theirs; `metrics.json` gives the raw pair's figures
under `raw_generators`, and `process.gif` shows the raw pair as it trains.

`--semantic` adds CyCADA's semantic consistency (Hoffman et al. 2018): a small classifier f, trained
first on MNIST's labels only, holds each translation to the class it reads in the input:
    + lambda_sem (CE(f(G(x)), argmax f(x)) + CE(f(F(y)), argmax f(y)))    lambda_sem = 1
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm


class ResidualBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1), nn.InstanceNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1), nn.InstanceNorm2d(c),
        )  # fmt: skip

    def forward(self, x):
        return x + self.body(x)


class Generator(nn.Module):
    def __init__(self, w=32, res_blocks=3):
        super().__init__()

        def conv(c_in, c_out, *shape):
            return [nn.Conv2d(c_in, c_out, *shape), nn.InstanceNorm2d(c_out), nn.ReLU()]

        def up(c_in, c_out):
            return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.InstanceNorm2d(c_out), nn.ReLU()]

        self.net = nn.Sequential(
            *conv(1, w, 3, 1, 1),
            *conv(w, 2 * w, 4, 2, 1),
            *conv(2 * w, 4 * w, 4, 2, 1),
            *(ResidualBlock(4 * w) for _ in range(res_blocks)),
            *up(4 * w, 2 * w),
            *up(2 * w, w),
            nn.Conv2d(w, 1, 3, 1, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.net(x)


class Discriminator(nn.Module):
    def __init__(self, w=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.InstanceNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.InstanceNorm2d(4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 3, 1, 1),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)


class ReplayBuffer:
    """The last `size` fakes a discriminator saw (the paper's pool). While it fills, each fake is stored
    and shown; once full, each fake is, half of the time, swapped for a stored one, shown instead."""

    def __init__(self, size=50):
        self.size = size
        self.images = torch.empty(0)

    def __call__(self, fakes):
        fakes = fakes.detach()
        stored = min(self.size - len(self.images), len(fakes))
        self.images = torch.cat([self.images.to(fakes), fakes[:stored]])
        shown = fakes.clone()
        rest = torch.arange(stored, len(fakes), device=fakes.device)
        slots = torch.randperm(self.size, device=fakes.device)[: len(rest)]  # distinct slots
        rest = rest[: len(slots)]
        swap = torch.rand(len(rest), device=fakes.device) < 0.5
        rest, slots = rest[swap], slots[swap]
        shown[rest] = self.images[slots]
        self.images[slots] = fakes[rest]
        return shown

    def state_dict(self):
        return {"images": self.images}

    def load_state_dict(self, state):
        self.images = state["images"]


def lsgan_loss(logits, target: float):
    """Mean of (D(x) - target)^2 over every patch of every image."""
    return (logits - target).pow(2).mean()


def cycle_loss(x, reconstructed):
    """Mean absolute error per pixel: |F(G(x)) - x|_1 averaged over the batch and the pixels."""
    return (reconstructed - x).abs().mean()


def main():
    p = fm.parser(
        __file__,
        "Train a CycleGAN between USPS and MNIST.",
        epochs=12,
        batch_size=32,
        lr=2e-4,
        subfolder=lambda args: "semantic" if args.semantic else "",
    )
    p.add_argument("--usps-framing", choices=fm.USPS_FRAMINGS, default="full", help="how USPS fills the 32x32 frame")
    p.add_argument(
        "--width", type=fm.positive_int, default=16, help="channels of the generators' first layer (the paper: 64)"
    )
    p.add_argument("--d-width", type=fm.positive_int, default=64, help="channels of the discriminators' first layer")
    p.add_argument("--res-blocks", type=fm.positive_int, default=3, help="residual blocks (the paper: 6 or 9)")
    p.add_argument("--cycle-weight", type=fm.positive_float, default=10.0, help="lambda_cyc (the paper: 10)")
    p.add_argument("--identity-weight", type=fm.non_negative_float, default=0.0, help="lambda_id (the paper: 0 or 5)")
    p.add_argument("--buffer", type=fm.non_negative_int, default=50, help="fakes in the replay buffer, 0 for none")
    p.add_argument("--semantic", action="store_true", help="add CyCADA's semantic-consistency loss")
    p.add_argument("--semantic-weight", type=fm.positive_float, default=1.0, help="lambda_sem, with --semantic")
    args = p.parse_args()
    run = fm.Run(args)
    mnist = run.load_data("MNIST", epoch=False)
    usps = run.load_data("USPS", framing=args.usps_framing)  # an epoch is a pass over USPS's training digits
    g, f = run.to_device(Generator(args.width, args.res_blocks)), run.to_device(Generator(args.width, args.res_blocks))
    d_m, d_u = run.to_device(Discriminator(args.d_width)), run.to_device(Discriminator(args.d_width))
    opt_g = torch.optim.Adam([*g.parameters(), *f.parameters()], lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*d_m.parameters(), *d_u.parameters()], lr=args.lr, betas=(0.5, 0.999))
    decay = run.linear_decay(opt_g, opt_d)
    buffer_m, buffer_u = ReplayBuffer(args.buffer), ReplayBuffer(args.buffer)
    g_avg, f_avg = fm.moving_average(g), fm.moving_average(f)  # what translates and is measured at the end
    tracked = dict(g=g, f=f, g_avg=g_avg, f_avg=f_avg, d_m=d_m, d_u=d_u, opt_g=opt_g, opt_d=opt_d)
    tracked |= dict(sched_g=decay[0], sched_d=decay[1])
    if args.semantic:
        classifier = fm.train_classifier(mnist.train_x, mnist.train_y, seed=args.seed).requires_grad_(False)
        tracked["classifier"] = classifier
    run.track(**tracked, buffer_m=buffer_m, buffer_u=buffer_u)

    fixed_u, fixed_m = usps.test_x[:16], mnist.test_x[:16]
    fm.save_grid(torch.cat([usps.train_x[:32], mnist.train_x[:32]]), run.out / "real.png")

    def translation_grid(g, f):
        """Rows of 8: USPS digits over their MNIST-style translations, then MNIST digits over their USPS-style ones."""
        return torch.cat([fm.interleaved_rows(fixed_u, g(fixed_u)), fm.interleaved_rows(fixed_m, f(fixed_m))])

    for x in run.batches(usps.train_x):
        y = mnist.train_x[torch.randint(len(mnist.train_x), (len(x),), device=run.device)]
        fake_m, fake_u = g(x), f(y)
        gan = lsgan_loss(d_m(fake_m), 1) + lsgan_loss(d_u(fake_u), 1)
        cycle = cycle_loss(x, f(fake_m)) + cycle_loss(y, g(fake_u))
        g_loss = gan + args.cycle_weight * cycle
        if args.identity_weight:
            g_loss = g_loss + args.identity_weight * (cycle_loss(y, g(y)) + cycle_loss(x, f(x)))
        if args.semantic:
            with torch.no_grad():
                read_x, read_y = classifier(x).argmax(1), classifier(y).argmax(1)
            semantic = F.cross_entropy(classifier(fake_m), read_x) + F.cross_entropy(classifier(fake_u), read_y)
            g_loss = g_loss + args.semantic_weight * semantic
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        g_avg.update_parameters(g)
        f_avg.update_parameters(f)

        shown_m = buffer_m(fake_m) if args.buffer else fake_m.detach()
        shown_u = buffer_u(fake_u) if args.buffer else fake_u.detach()
        d_loss = 0.5 * (lsgan_loss(d_m(y), 1) + lsgan_loss(d_m(shown_m), 0))
        d_loss = d_loss + 0.5 * (lsgan_loss(d_u(x), 1) + lsgan_loss(d_u(shown_u), 0))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        for sched in decay:
            sched.step()
        run.log(d=d_loss, gan=gan, cycle=cycle)
        if run.frame_due:
            with fm.evaluating(g, f):
                run.save_frame(translation_grid(g, f))

    with fm.evaluating(g, f, g_avg, f_avg):
        fm.save_grid(translation_grid(g_avg, f_avg), run.out / "translation.png")
        cycles = [
            torch.cat([x[:8], a(x[:8]), b(a(x[:8]))]) for x, a, b in ((fixed_u, g_avg, f_avg), (fixed_m, f_avg, g_avg))
        ]
        fm.save_grid(torch.cat(cycles), run.out / "cycle.png")
        figures = fm.unpaired_translation_metrics(g_avg, f_avg, usps, mnist)
        figures |= fm.adaptation_metrics(fm.translate(f_avg, mnist.train_x), mnist, usps, seed=args.seed)
        figures["raw_generators"] = fm.unpaired_translation_metrics(g, f, usps, mnist)
    run.finish(**figures, usps_framing=args.usps_framing)


if __name__ == "__main__":
    main()
