"""Wasserstein GAN (Arjovsky et al. 2017) on the DCGAN-style pair of the original README.

    python WGAN/train.py       # 11 minutes on a 2-core AMD EPYC, 30 to 40 on a 2.5 GHz Intel Xeon -> WGAN/samples/

Networks (channels 32-64-128-256, half the original's 64-512, to fit the time on a CPU; batches of
32, not 64, for twice the generator steps in that time):
    critic      four stride-2 4x4 convs, 32x32 -> 16 -> 8 -> 4 -> 2, each with BatchNorm and then
                LeakyReLU(0.2), then a 2x2 conv to one score: no sigmoid, the score is not a probability
    generator   the mirror: z (100) -> 2x2 transposed conv -> four stride-2 4x4 transposed convs with
                BatchNorm and ReLU between them, sigmoid on the pixels

Objective: the critic f estimates the Wasserstein-1 distance max_{|f|_L <= 1} E f(x) - E f(G(z)),
the Lipschitz bound enforced crudely by clipping every critic weight to [-0.01, 0.01] after each
step; the generator lowers the estimate:
    critic     E f(G(z)) - E f(x)
    generator  -E f(G(z))
BatchNorm comes before the LeakyReLU, as in the authors' DCGAN critic, not after it as in the other
GANs here: the critic's loss is linear, so it sees only each batch's mean score, and a score linear in
a BatchNorm output (real and fake are normalised as separate batches) has its batch mean pinned.
RMSprop for both (the paper: momentum-based optimisers are unstable here) at 2e-4, four times the
paper's 5e-5: the run is short (5,625 generator steps). Page: WGAN/README.md.
Five critic steps, each on its own batch of real images, per generator step. `steps` counts critic
steps.

Samples and figures come from an exponential moving average of the generator's weights (decay
0.999, `fm.moving_average`), which smooths the game's oscillation, as in ProGAN, BigGAN and StyleGAN,
with BatchNorm statistics recomputed for the averaged weights (`fm.settle_batchnorm`).
`metrics.json` gives the raw generator's figures under `raw_generator`; `process.gif` shows the raw
generator as it trains.
"""

import torch
import torch.nn as nn

import funmnist as fm


class Critic(nn.Module):
    def __init__(self, w=32):
        super().__init__()

        def down(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]

        self.net = nn.Sequential(
            *down(1, w), *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w), nn.Conv2d(8 * w, 1, 2)
        )

    def forward(self, x):
        return self.net(x).flatten()


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


def critic_loss(real_scores, fake_scores):
    """E f(G(z)) - E f(x): minus the critic's estimate of the Wasserstein distance."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss(fake_scores):
    """-E f(G(z))."""
    return -fake_scores.mean()


def main():
    p = fm.parser(__file__, "Train a Wasserstein GAN with weight clipping.", epochs=15, batch_size=32, lr=2e-4)
    p.add_argument("--z-dim", type=fm.positive_int, default=100, help="size of the noise vector")
    p.add_argument("--clip", type=fm.positive_float, default=0.01, help="critic weights are clipped to [-clip, clip]")
    p.add_argument("--n-critic", type=fm.positive_int, default=5, help="critic steps per generator step")
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    gen, critic = run.to_device(Generator(args.z_dim)), run.to_device(Critic())
    opt_g = torch.optim.RMSprop(gen.parameters(), lr=args.lr)
    opt_c = torch.optim.RMSprop(critic.parameters(), lr=args.lr)
    gen_avg = fm.moving_average(gen)  # what is sampled and measured at the end
    run.track(gen=gen, gen_avg=gen_avg, critic=critic, opt_g=opt_g, opt_c=opt_c)
    fixed_z = torch.randn(64, args.z_dim, device=run.device)
    fm.save_grid(data.train_x[:64], run.out / "real.png")

    def noise(n):
        return torch.randn(n, args.z_dim, device=run.device)

    for x in run.batches(data.train_x):
        with torch.no_grad():
            fake = gen(noise(len(x)))
        c_loss = critic_loss(critic(x), critic(fake))
        opt_c.zero_grad(set_to_none=True)
        c_loss.backward()
        opt_c.step()
        with torch.no_grad():
            for param in critic.parameters():
                param.clamp_(-args.clip, args.clip)
        run.log(wasserstein=-c_loss)
        if run.step % args.n_critic == 0:
            g_loss = generator_loss(critic(gen(noise(len(x)))))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            gen_avg.update_parameters(gen)
            run.log(g=g_loss)
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
