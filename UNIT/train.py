"""UNIT (Liu, Breuel and Kautz 2017): unsupervised translation between USPS and MNIST through a shared
latent space. Page: UNIT/README.md

    python UNIT/train.py        # -> UNIT/samples/

Two VAE-GANs, one per domain (U: USPS, M: MNIST), whose encoders E_U, E_M share their last layers and
whose generators G_U, G_M share their first, so that a code z means the same digit in both: USPS ->
MNIST is G_M(E_U(x)). USPS's labels are never read in training (only the test figures read them).

Networks (width w = 32, code of 128; the same Parameter objects where shared):
    encoder        its own two stride-2 4x4 convs (w, 2w; 32x32 -> 8x8; LeakyReLU 0.2, InstanceNorm on
                   the second), then the shared layers: a stride-2 4x4 conv (4w, -> 4x4; InstanceNorm,
                   LeakyReLU), a 4x4 conv to 8w at 1x1, LeakyReLU, a 1x1 conv to the code's mean mu (128)
    generator      the shared layers: a 4x4 transposed conv from the code to 8w x 4x4, ReLU, a stride-2
                   4x4 transposed conv (4w, -> 8x8; InstanceNorm, ReLU); then its own two: a stride-2
                   transposed conv (2w, -> 16x16; InstanceNorm, ReLU) and one to the 32x32 pixels, sigmoid
    discriminator  one per domain, CycleGAN's PatchGAN (three stride-2 4x4 convs, a 4x4 map of logits);
                   with --adapt, as in the paper's digit experiments, the two share the last conv and
                   the logits, and a linear head on that conv's features learns MNIST's ten classes
Two blocks at each end are the domain's own (`--private-blocks`): a USPS digit fills the frame and
an MNIST one sits in a 20-pixel box, and one private layer at 16x16 cannot rescale a digit, so the
shared layers could not mean one digit in both; with three private blocks, only the layers next to
the code are shared and the private halves read one code as different digits. The code is a vector,
not a map, for the same reason of framing. The shared layers are plain (a residual path would carry
private features through them) and use InstanceNorm, whose statistics are each image's own, never
a mix of the domains. z = mu + e, e ~ N(0, I), unit variance as in the official code.

Objective, for x in U (and likewise for y in M), least-squares GAN as the official code:
    VAE            lambda_1 KL(q(z|x) || N(0, I)) + lambda_2 |G_U(z) - x|_1,   KL per unit = mu^2 / 2
    GAN            lambda_0 (D_M(G_M(z)) - 1)^2                 (D_M: (D_M(y) - 1)^2 + D_M(G_M(z))^2)
    cycle          lambda_3 KL(q(z'|G_M(z))) + lambda_4 |G_U(z') - x|_1,      z' ~ E_M(G_M(z)) + e
and with --adapt (the paper's digit setup; MNIST's labels are read, USPS's still never), for the two
images decoded from one code, x's reconstruction and its translation,
    agreement      lambda_f |h_U(G_U(z)) - h_M(G_M(z))|_1   (h: the shared conv's features; in both
                   players' losses: the paper asks the discriminators to read such a pair alike)
    class          lambda_c CE(head(h_M(y)), label of y)    (the discriminators' loss)
with the paper's weights divided by 10 (the official code's): lambda_0 = 1 (GAN), lambda_1 = lambda_3
= 0.01 (KL), lambda_2 = lambda_4 = 10 (reconstruction and cycle); lambda_f = lambda_c = 1 (the paper
gives none). Losses are means over pixels and
latent units. Adam 2e-4, betas (0.5, 0.999), for all networks (CycleGAN's rate: the official code's
1e-4 is sized for a million steps, this run takes 4,086), constant for the first half of the run,
then linearly to zero. Translations use the mean: G_M(mu_U(x)).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm


def down(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.InstanceNorm2d(c_out), nn.LeakyReLU(0.2)]


def up(c_in, c_out):
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.InstanceNorm2d(c_out), nn.ReLU()]


def encoder_blocks(w, latent):
    """The encoder as blocks, pixels to the code's mean: 32x32 -> 16 -> 8 -> 4 -> 1x1."""
    return [
        [nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2)],
        down(w, 2 * w),
        down(2 * w, 4 * w),
        [nn.Conv2d(4 * w, 8 * w, 4), nn.LeakyReLU(0.2), nn.Conv2d(8 * w, latent, 1)],
    ]


def generator_blocks(w, latent):
    """The generator as blocks, the code to pixels: 1x1 -> 4 -> 8 -> 16 -> 32x32."""
    return [
        [nn.ConvTranspose2d(latent, 8 * w, 4), nn.ReLU()],
        up(8 * w, 4 * w),
        up(4 * w, 2 * w),
        [nn.ConvTranspose2d(2 * w, 1, 4, 2, 1), nn.Sigmoid()],
    ]


def shared_layers(w=32, latent=128, private=2):
    """All but each encoder's first `private` blocks and all but each generator's last `private`:
    one Sequential each, used by both domains."""
    encoder = nn.Sequential(*sum(encoder_blocks(w, latent)[private:], []))
    generator = nn.Sequential(*sum(generator_blocks(w, latent)[:-private], []))
    return encoder, generator


class Encoder(nn.Module):
    def __init__(self, shared: nn.Module, w=32, latent=128, private=2):
        super().__init__()
        self.net = nn.Sequential(*sum(encoder_blocks(w, latent)[:private], []), shared)

    def forward(self, x):
        return self.net(x)  # the code's mean, (N, latent, 1, 1)


class Generator(nn.Module):
    def __init__(self, shared: nn.Module, w=32, latent=128, private=2):
        super().__init__()
        self.net = nn.Sequential(shared, *sum(generator_blocks(w, latent)[-private:], []))

    def forward(self, z):
        return self.net(z)


class DiscriminatorTop(nn.Module):
    """The PatchGAN's last stride-2 4x4 conv (8x8 -> 4x4) and its 3x3 conv to a 4x4 map of logits; with
    classes, a linear head on that conv's features too. With --adapt both discriminators use one."""

    def __init__(self, w=32, classes=0):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.InstanceNorm2d(4 * w), nn.LeakyReLU(0.2))
        self.real = nn.Conv2d(4 * w, 1, 3, 1, 1)
        self.digit = nn.Linear(4 * w * 16, classes) if classes else None


class Discriminator(nn.Module):
    def __init__(self, w=32, top: DiscriminatorTop | None = None, classes=0):
        super().__init__()
        self.own = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.InstanceNorm2d(2 * w), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.top = top if top is not None else DiscriminatorTop(w, classes)

    def forward(self, x):
        """(a 4x4 map of logits, the last block's features)."""
        features = self.top.block(self.own(x))
        return self.top.real(features), features

    def classifier(self) -> nn.Module:
        """Its own blocks, the last block and the class head as one module of the same Parameters (--adapt)."""
        return nn.Sequential(self.own, self.top.block, nn.Flatten(), self.top.digit)


def kl_loss(mu):
    """KL(N(mu, I) || N(0, I)) per latent unit, mean over the batch: mean of mu^2 / 2."""
    return 0.5 * mu.pow(2).mean()


def lsgan_loss(logits, target: float):
    """Mean of (D(x) - target)^2 over every patch of every image."""
    return (logits - target).pow(2).mean()


def l1(a, b):
    return (a - b).abs().mean()


def main():
    p = fm.parser(
        __file__,
        "Train UNIT between USPS and MNIST.",
        epochs=18,
        batch_size=32,
        lr=2e-4,
        subfolder=lambda args: "adapt" if args.adapt else "",
    )
    p.add_argument("--usps-framing", choices=fm.USPS_FRAMINGS, default="full", help="how USPS fills the 32x32 frame")
    p.add_argument("--width", type=fm.positive_int, default=32, help="channels of the first layer (the paper: 64)")
    p.add_argument("--latent-dim", type=fm.positive_int, default=128, help="size of the shared code")
    p.add_argument(
        "--private-blocks", type=int, choices=[1, 2, 3], default=2, help="blocks at each end kept per domain"
    )
    p.add_argument("--gan-weight", type=fm.positive_float, default=1.0, help="lambda_0 (the paper: 10)")
    p.add_argument("--kl-weight", type=fm.positive_float, default=0.01, help="lambda_1 and lambda_3 (the paper: 0.1)")
    p.add_argument(
        "--recon-weight", type=fm.positive_float, default=10.0, help="lambda_2 and lambda_4 (the paper: 100)"
    )
    p.add_argument(
        "--adapt",
        action="store_true",
        help="the paper's digit setup: discriminators share their last block, which learns MNIST's labels too, "
        "and images decoded from one code read alike to it",
    )
    p.add_argument("--class-weight", type=fm.positive_float, default=1.0, help="--adapt: weight of the class loss")
    p.add_argument(
        "--feature-weight", type=fm.positive_float, default=1.0, help="--adapt: weight of the feature distance"
    )
    args = p.parse_args()
    run = fm.Run(args)
    mnist = run.load_data("MNIST", epoch=False)
    usps = run.load_data("USPS", framing=args.usps_framing)  # an epoch is a pass over USPS's training digits
    w = args.width
    k, latent = args.private_blocks, args.latent_dim
    shared_enc, shared_gen = shared_layers(w, latent, k)
    enc_u, enc_m = (run.to_device(Encoder(shared_enc, w, latent, k)) for _ in "um")
    gen_u, gen_m = (run.to_device(Generator(shared_gen, w, latent, k)) for _ in "um")
    d_u = run.to_device(Discriminator(w, classes=10 * args.adapt))
    d_m = run.to_device(Discriminator(w, top=d_u.top if args.adapt else None))
    vae = nn.ModuleList([enc_u, enc_m, gen_u, gen_m])  # .parameters() lists each shared Parameter once
    opt_g = torch.optim.Adam(vae.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(nn.ModuleList([d_u, d_m]).parameters(), lr=args.lr, betas=(0.5, 0.999))
    decay = run.linear_decay(opt_g, opt_d)
    run.track(vae=vae, d_u=d_u, d_m=d_m, opt_g=opt_g, opt_d=opt_d, sched_g=decay[0], sched_d=decay[1])

    def to_mnist(x):
        return gen_m(enc_u(x))

    def to_usps(y):
        return gen_u(enc_m(y))

    fixed_u, fixed_m = usps.test_x[:16], mnist.test_x[:16]
    fm.save_grid(torch.cat([usps.train_x[:32], mnist.train_x[:32]]), run.out / "real.png")

    def translation_grid():
        """Rows of 8: USPS digits over their MNIST-style translations, then MNIST digits over their USPS-style ones."""
        return torch.cat(
            [fm.interleaved_rows(fixed_u, to_mnist(fixed_u)), fm.interleaved_rows(fixed_m, to_usps(fixed_m))]
        )

    def sample(mu):
        return mu + torch.randn_like(mu)

    for x in run.batches(usps.train_x):
        picked = torch.randint(len(mnist.train_x), (len(x),), device=run.device)
        y = mnist.train_x[picked]
        mu_u, mu_m = enc_u(x), enc_m(y)
        z_u, z_m = sample(mu_u), sample(mu_m)
        recon_u, recon_m = gen_u(z_u), gen_m(z_m)
        recon = l1(recon_u, x) + l1(recon_m, y)
        kl = kl_loss(mu_u) + kl_loss(mu_m)
        fake_m, fake_u = gen_m(z_u), gen_u(z_m)  # translations
        (fake_m_logits, fake_m_features), (fake_u_logits, fake_u_features) = d_m(fake_m), d_u(fake_u)
        gan = lsgan_loss(fake_m_logits, 1) + lsgan_loss(fake_u_logits, 1)
        mu_back_u, mu_back_m = enc_m(fake_m), enc_u(fake_u)  # the translations' codes
        cycle = l1(gen_u(sample(mu_back_u)), x) + l1(gen_m(sample(mu_back_m)), y)
        cycle_kl = kl_loss(mu_back_u) + kl_loss(mu_back_m)
        g_loss = args.gan_weight * gan + args.kl_weight * (kl + cycle_kl) + args.recon_weight * (recon + cycle)
        losses = {}
        if args.adapt:  # a code's two images, its reconstruction and its translation, should read alike
            agree = l1(d_u(recon_u)[1], fake_m_features) + l1(d_m(recon_m)[1], fake_u_features)
            g_loss = g_loss + args.feature_weight * agree
            losses["agree"] = agree
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        real_m_logits, real_m_features = d_m(y)
        (judged_m, judged_m_features), (judged_u, judged_u_features) = d_m(fake_m.detach()), d_u(fake_u.detach())
        d_loss = lsgan_loss(real_m_logits, 1) + lsgan_loss(judged_m, 0)
        d_loss = d_loss + lsgan_loss(d_u(x)[0], 1) + lsgan_loss(judged_u, 0)
        if args.adapt:
            class_loss = F.cross_entropy(d_m.top.digit(real_m_features.flatten(1)), mnist.train_y[picked])
            agree_d = l1(d_u(recon_u.detach())[1], judged_m_features) + l1(d_m(recon_m.detach())[1], judged_u_features)
            d_loss = d_loss + args.class_weight * class_loss + args.feature_weight * agree_d
            losses["class"] = class_loss
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        for sched in decay:
            sched.step()
        run.log(d=d_loss, gan=gan, recon=recon, cycle=cycle, kl=kl, **losses)
        if run.frame_due:
            with fm.evaluating(vae):
                run.save_frame(translation_grid())

    with fm.evaluating(vae):
        fm.save_grid(translation_grid(), run.out / "translation.png")
        cycles = [
            torch.cat([x[:8], a(x[:8]), b(a(x[:8]))])
            for x, a, b in ((fixed_u, to_mnist, to_usps), (fixed_m, to_usps, to_mnist))
        ]
        fm.save_grid(torch.cat(cycles), run.out / "cycle.png")
        figures = fm.unpaired_translation_metrics(to_mnist, to_usps, usps, mnist)
        figures |= fm.adaptation_metrics(fm.translate(to_usps, mnist.train_x), mnist, usps, seed=args.seed)
        if args.adapt:  # the paper's figure: the shared head, through USPS's own blocks
            figures["discriminator_adapted_acc"] = fm.accuracy(d_u.classifier(), usps.test_x, usps.test_y)
            figures["discriminator_mnist_acc"] = fm.accuracy(d_m.classifier(), mnist.test_x, mnist.test_y)
    run.finish(**figures, usps_framing=args.usps_framing)


if __name__ == "__main__":
    main()
