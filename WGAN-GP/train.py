"""WGAN with gradient penalty (Gulrajani et al. 2017) on the DCGAN-style pair of the original README.

    python WGAN-GP/train.py    # about 14 minutes on a 2-core AMD EPYC -> WGAN-GP/samples/

Networks (channels 32-64-128-256, half the original's 64-512, to fit the time on a CPU; batches of
32, not 64, so that the run makes twice the generator steps in that time):
    critic      four stride-2 4x4 convs, 32x32 -> 16 -> 8 -> 4 -> 2, each with LeakyReLU(0.2) and no
                BatchNorm (it would make one sample's score depend on the others', and the penalty
                is on each sample's own gradient), then a 2x2 conv to one score
    generator   the mirror: z (100) -> 2x2 transposed conv -> four stride-2 4x4 transposed convs with
                BatchNorm and ReLU between them, sigmoid on the pixels

Objective: WGAN's, with the critic kept 1-Lipschitz by a penalty instead of weight clipping:
    critic     E f(G(z)) - E f(x) + lambda E (|grad f(x^)|_2 - 1)^2,   x^ = eps x + (1 - eps) G(z)
    generator  -E f(G(z))
with eps ~ U(0, 1) drawn per sample, the gradient's norm taken per sample, lambda = 10. (The
original passed zero `grad_outputs`, which made the penalty the constant lambda.) Adam with the
paper's betas (0, 0.9) but a learning rate of 5e-4, not 1e-4: the run is short. One critic step
per generator step, as ProGAN trains its WGAN-GP, not the paper's five: in the same time the
generator steps about four times as often (8 epochs: 15,000 steps of each player). Each critic step
takes its own batch of real images. `steps` counts critic steps. Page: WGAN-GP/README.md.

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

        def down(c_in, c_out):  # no BatchNorm: the penalty is on each sample's own gradient
            return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2)]

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


def gradient_penalty(critic, real, fake, weight=10.0):
    """weight * E (|grad f(x^)|_2 - 1)^2 on random per-sample interpolates x^ of real and fake images."""
    eps = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(mixed)
    (grads,) = torch.autograd.grad(scores, mixed, grad_outputs=torch.ones_like(scores), create_graph=True)
    return weight * (grads.flatten(1).norm(dim=1) - 1).pow(2).mean()


def main():
    p = fm.parser(__file__, "Train a WGAN with gradient penalty.", epochs=8, batch_size=32, lr=5e-4)
    p.add_argument("--z-dim", type=fm.positive_int, default=100, help="size of the noise vector")
    p.add_argument("--gp-weight", type=fm.positive_float, default=10.0, help="lambda, the penalty's weight")
    p.add_argument("--n-critic", type=fm.positive_int, default=1, help="critic steps per generator step")
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    gen, critic = run.to_device(Generator(args.z_dim)), run.to_device(Critic())
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.0, 0.9))
    opt_c = torch.optim.Adam(critic.parameters(), lr=args.lr, betas=(0.0, 0.9))
    gen_avg = fm.moving_average(gen)  # what is sampled and measured at the end
    run.track(gen=gen, gen_avg=gen_avg, critic=critic, opt_g=opt_g, opt_c=opt_c)
    fixed_z = torch.randn(64, args.z_dim, device=run.device)
    fm.save_grid(data.train_x[:64], run.out / "real.png")

    def noise(n):
        return torch.randn(n, args.z_dim, device=run.device)

    for x in run.batches(data.train_x):
        with torch.no_grad():
            fake = gen(noise(len(x)))
        distance = critic(x).mean() - critic(fake).mean()
        penalty = gradient_penalty(critic, x, fake, args.gp_weight)
        opt_c.zero_grad(set_to_none=True)
        (penalty - distance).backward()
        opt_c.step()
        run.log(wasserstein=distance, penalty=penalty)
        if run.step % args.n_critic == 0:
            g_loss = -critic(gen(noise(len(x)))).mean()
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
