"""Energy-based GAN (Zhao et al. 2017) on the DCGAN-style pair of the original README.

    python EBGAN/train.py      # 10 minutes on a 2-core AMD EPYC -> EBGAN/samples/

Networks (channels 32-64-128-256, half the original's 64-512, to fit the time on a CPU):
    discriminator  an autoencoder: the DCGAN discriminator's four stride-2 4x4 convs (LeakyReLU 0.2,
                   BatchNorm) encode 32x32 to 256x2x2, and the generator's four transposed convs
                   (BatchNorm, ReLU, sigmoid) decode it back; its energy is the reconstruction error
    generator      z (100) -> 2x2 transposed conv -> four stride-2 4x4 transposed convs with BatchNorm
                   and ReLU between them, sigmoid on the pixels

Objective, with the energy E(x) = mean over pixels of (Dec(Enc(x)) - x)^2 for each image:
    discriminator  E(x) + max(0, m - E(G(z)))               low energy for data, at least m for fakes
    generator      E(G(z)) + lambda_pt PT(Enc(G(z)))
    PT(S) = 1 / (N (N - 1)) sum_{i != j} cos(S_i, S_j)^2    the pull-away term: fakes whose codes point
                                                            the same way are penalised (mode collapse)
with m = 0.03 and lambda_pt = 0.1; each term is averaged over the batch. Adam 2e-4, betas (0.5, 0.999).
The margin is on the energy's scale, a mean over pixels: real digits settle near 0.01, so fakes are
asked to be reconstructed a few times worse (its page: why not the paper's larger margins).

Samples and figures come from an exponential moving average of the generator's weights (decay
0.999, `fm.moving_average`), which smooths the game's oscillation, as in ProGAN, BigGAN and StyleGAN,
with BatchNorm statistics recomputed for the averaged weights (`fm.settle_batchnorm`).
`metrics.json` gives the raw generator's figures under `raw_generator`; `process.gif` shows the raw
generator as it trains.
"""

import torch
import torch.nn as nn

import funmnist as fm


class Discriminator(nn.Module):
    def __init__(self, w=32):
        super().__init__()

        def down(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2), nn.BatchNorm2d(c_out)]

        def up(c_in, c_out):
            return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.encoder = nn.Sequential(*down(1, w), *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w))
        self.decoder = nn.Sequential(
            *up(8 * w, 4 * w), *up(4 * w, 2 * w), *up(2 * w, w), nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Sigmoid()
        )

    def forward(self, x):
        """Each image's energy, and its code (for the pull-away term)."""
        code = self.encoder(x)
        energy = (self.decoder(code) - x).pow(2).mean((1, 2, 3))
        return energy, code.flatten(1)


class Generator(nn.Module):
    def __init__(self, z_dim=100, w=32):
        super().__init__()

        def up(c_in, c_out):
            return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]

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

    def forward(self, z):
        return self.net(z[:, :, None, None])


def discriminator_loss(real_energy, fake_energy, margin):
    """E(x) + max(0, m - E(G(z))), averaged over the batch."""
    return real_energy.mean() + (margin - fake_energy).clamp(min=0).mean()


def pull_away(codes):
    """1 / (N (N - 1)) sum_{i != j} cos(S_i, S_j)^2: 0 for orthogonal codes, 1 for parallel ones."""
    unit = codes / codes.norm(dim=1, keepdim=True).clamp(min=1e-8)
    n = len(codes)
    return ((unit @ unit.T).pow(2).sum() - n) / (n * (n - 1))


def main():
    p = fm.parser(__file__, "Train an energy-based GAN.", epochs=6, batch_size=64, lr=2e-4)
    p.add_argument("--z-dim", type=fm.positive_int, default=100, help="size of the noise vector")
    p.add_argument("--margin", type=fm.positive_float, default=0.03, help="m, the energy fakes are pushed up to")
    p.add_argument("--pt-weight", type=fm.positive_float, default=0.1, help="lambda_pt, the pull-away weight")
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    gen, disc = run.to_device(Generator(args.z_dim)), run.to_device(Discriminator())
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999))
    gen_avg = fm.moving_average(gen)  # what is sampled and measured at the end
    run.track(gen=gen, gen_avg=gen_avg, disc=disc, opt_g=opt_g, opt_d=opt_d)
    fixed_z = torch.randn(64, args.z_dim, device=run.device)
    fm.save_grid(data.train_x[:64], run.out / "real.png")

    def noise(n):
        return torch.randn(n, args.z_dim, device=run.device)

    for x in run.batches(data.train_x):
        fake = gen(noise(len(x)))
        real_energy, fake_energy = disc(x)[0], disc(fake.detach())[0]
        d_loss = discriminator_loss(real_energy, fake_energy, args.margin)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        energy, codes = disc(fake)
        pt = pull_away(codes)
        g_loss = energy.mean() + args.pt_weight * pt
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        gen_avg.update_parameters(gen)
        run.log(d=d_loss, g=g_loss, real_energy=real_energy.mean(), pull_away=pt)
        if run.frame_due:
            with fm.evaluating(gen):
                run.save_frame(gen(fixed_z))

    fm.settle_batchnorm(gen_avg, noise)
    with fm.evaluating(gen, gen_avg):
        fm.save_grid(gen_avg(fixed_z), run.out / "sample.png")
        quality = fm.generator_metrics(lambda n: gen_avg(noise(n)), data)
        quality["raw_generator"] = fm.generator_metrics(lambda n: gen(noise(n)), data)
    run.finish(**quality)


if __name__ == "__main__":
    main()
