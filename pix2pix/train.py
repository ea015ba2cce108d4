"""pix2pix (Isola et al. 2017): paired translation from a digit's edges to the digit. Page: pix2pix/README.md

    python pix2pix/train.py           # -> pix2pix/samples/
    python pix2pix/train.py --no-gan  # the same U-Net with the L1 loss alone -> pix2pix/samples/no_gan/

The input is `fm.edges(x)`, the outer contour of an MNIST digit x (its 3x3 dilation minus the
digit); the target is x itself. Every training pair is seen, as in the paper's paired tasks.

Networks (width w = 32; the paper's shapes for 32x32 instead of 256x256):
    generator      a U-Net: five stride-2 4x4 convs (w, 2w, 4w, 8w, 8w; 32x32 -> 1x1; LeakyReLU 0.2,
                   BatchNorm but on the first and the last), five stride-2 4x4 transposed convs back
                   (ReLU, BatchNorm), each taking the matching encoder layer's output beside its
                   input (the skip connections), sigmoid on the pixels. No dropout: the mapping is
                   deterministic (the paper's dropout is its only noise, and it found noise ignored)
    discriminator  a PatchGAN on the edges beside the image (2 channels): three stride-2 4x4 convs
                   (w, 2w, 4w; LeakyReLU 0.2, BatchNorm after the first), a 3x3 conv to a 4x4 map of
                   logits, one per overlapping patch

Objective (e the edges, x the digit, D's outputs logits):
    D              -log sigma(D(e, x)) - log(1 - sigma(D(e, G(e))))
    G              -log sigma(D(e, G(e))) + lambda |G(e) - x|_1,       lambda = 100 (--l1-weight)
(halved for D, as the paper slows D relative to G). `--no-gan` drops D and the first term of G's
loss. Adam 2e-4, betas (0.5, 0.999), for both.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm


def down(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out))


def up(c_in, c_out):
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out))


class UNet(nn.Module):
    """Encoder layers e1..e5 (32x32 -> 1x1), decoder layers d5..d1 back; d_i takes e_i's output beside its input."""

    def __init__(self, w=32):
        super().__init__()
        self.e1 = nn.Conv2d(1, w, 4, 2, 1)  # 16x16, no BatchNorm on the input layer (the paper's)
        self.e2 = down(w, 2 * w)  # 8x8
        self.e3 = down(2 * w, 4 * w)  # 4x4
        self.e4 = down(4 * w, 8 * w)  # 2x2
        self.e5 = nn.Conv2d(8 * w, 8 * w, 4, 2, 1)  # 1x1, the bottleneck
        self.d5 = up(8 * w, 8 * w)  # 2x2
        self.d4 = up(16 * w, 4 * w)  # 4x4
        self.d3 = up(8 * w, 2 * w)  # 8x8
        self.d2 = up(4 * w, w)  # 16x16
        self.d1 = nn.ConvTranspose2d(2 * w, 1, 4, 2, 1)  # 32x32

    def forward(self, e):
        e1 = self.e1(e)
        e2 = self.e2(F.leaky_relu(e1, 0.2))
        e3 = self.e3(F.leaky_relu(e2, 0.2))
        e4 = self.e4(F.leaky_relu(e3, 0.2))
        e5 = self.e5(F.leaky_relu(e4, 0.2))
        h = self.d5(F.relu(e5))
        h = self.d4(F.relu(torch.cat([h, e4], 1)))
        h = self.d3(F.relu(torch.cat([h, e3], 1)))
        h = self.d2(F.relu(torch.cat([h, e2], 1)))
        return torch.sigmoid(self.d1(F.relu(torch.cat([h, e1], 1))))


class Discriminator(nn.Module):
    def __init__(self, w=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 3, 1, 1),
        )  # fmt: skip

    def forward(self, e, x):
        return self.net(torch.cat([e, x], 1))


def discriminator_loss(real_logits, fake_logits):
    """Cross-entropy against 1 for real pairs and 0 for translated ones, halved: mean over patches."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def generator_loss(fake_logits, output, target, l1_weight):
    """-log sigma(D(e, G(e))) + lambda |G(e) - x|_1 (mean per pixel); without logits, the L1 term alone."""
    l1 = (output - target).abs().mean()
    if fake_logits is None:
        return l1_weight * l1
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits)) + l1_weight * l1


def main():
    p = fm.parser(
        __file__,
        "Train pix2pix: MNIST edges -> digits.",
        epochs=2,
        batch_size=64,
        lr=2e-4,
        subfolder=lambda args: "no_gan" if args.no_gan else "",
    )
    p.add_argument("--width", type=fm.positive_int, default=32, help="channels of the first layer (the paper: 64)")
    p.add_argument("--l1-weight", type=fm.positive_float, default=100.0, help="lambda (the paper: 100)")
    p.add_argument("--no-gan", action="store_true", help="train the U-Net with the L1 loss alone (the ablation)")
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    gen = run.to_device(UNet(args.width))
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.999))
    tracked = dict(gen=gen, opt_g=opt_g)
    if not args.no_gan:
        disc = run.to_device(Discriminator(args.width))
        opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999))
        tracked |= dict(disc=disc, opt_d=opt_d)
    run.track(**tracked)
    fixed = data.test_x[:16]
    fm.save_grid(torch.cat([fm.edges(data.train_x[:32]), data.train_x[:32]]), run.out / "real.png")

    def translation_grid():
        """Rows of 8: edges, the output, the ground truth; twice."""
        e = fm.edges(fixed)
        y = gen(e)
        return fm.interleaved_rows(e, y, fixed)

    for x in run.batches(data.train_x):
        e = fm.edges(x)
        fake = gen(e)
        if args.no_gan:
            g_loss = generator_loss(None, fake, x, args.l1_weight)
            losses = {}
        else:
            d_loss = discriminator_loss(disc(e, x), disc(e, fake.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = generator_loss(disc(e, fake), fake, x, args.l1_weight)
            losses = {"d": d_loss}
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        run.log(**losses, g=g_loss)
        if run.frame_due:
            with fm.evaluating(gen):
                run.save_frame(translation_grid())

    with fm.evaluating(gen):
        fm.save_grid(translation_grid(), run.out / "translation.png")
        output = fm.translate(lambda x: gen(fm.edges(x)), data.test_x)
        figures = fm.translation_metrics(output, data.test_y, data) | fm.paired_metrics(output, data.test_x)
    run.finish(**figures)


if __name__ == "__main__":
    main()
