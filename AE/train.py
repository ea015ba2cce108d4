"""Autoencoders: a convolutional encoder squeezes a digit into a code, a decoder rebuilds it.

    python AE/train.py                          # 100-d code        -> AE/samples/100_dim/
    python AE/train.py --variant 2_dim          # 2-d, sigmoid      -> AE/samples/2_dim/
    python AE/train.py --variant no_sig_no_reg  # 2-d, linear code  -> AE/samples/no_sig_no_reg/
    python AE/train.py --variant no_sig_reg     # 2-d, linear, L2   -> AE/samples/no_sig_reg/

Encoder (DCGAN-style): four stride-2 4x4 convolutions, 32x32 -> 16 -> 8 -> 4 -> 2, each followed by
LeakyReLU(0.2) and BatchNorm, then a 2x2 convolution to the code z. Decoder: the mirror, a 2x2
transposed convolution from z, then four stride-2 4x4 transposed convolutions with BatchNorm and
ReLU, and a sigmoid on the pixels. The channels are 32-64-128-256, half the original's 64-512: four
times fewer operations, so that each variant trains in two to four minutes on a 2-core CPU.
The decoder's first layer has no BatchNorm: BatchNorm would undo any rescaling of z, so an L2
penalty on z could shrink the codes towards 0 at no cost.

Objective: per-image sum of squared pixel errors, averaged over the batch, plus for `no_sig_reg`
the L2 penalty 0.2 * |z|^2 (the original README showed its figure, but its code never applied it):
    L = 1/B sum_i |x_i - dec(enc(x_i))|^2  +  lambda * 1/B sum_i |enc(x_i)|^2
"""

import torch
import torch.nn as nn

import funmnist as fm

VARIANTS = {  # code size, sigmoid on the code, weight of the L2 penalty on the code
    "100_dim": (100, False, 0.0),
    "2_dim": (2, True, 0.0),
    "no_sig_no_reg": (2, False, 0.0),
    "no_sig_reg": (2, False, 0.2),
}


class Encoder(nn.Module):
    def __init__(self, code_dim, sigmoid, width=32):
        super().__init__()

        def down(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2), nn.BatchNorm2d(c_out)]

        w = width
        self.net = nn.Sequential(
            *down(1, w), *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w), nn.Conv2d(8 * w, code_dim, 2)
        )
        self.sigmoid = sigmoid

    def forward(self, x):
        z = self.net(x).flatten(1)
        return torch.sigmoid(z) if self.sigmoid else z


class Decoder(nn.Module):
    def __init__(self, code_dim, width=32):
        super().__init__()

        def up(c_in, c_out):
            return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]

        w = width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(code_dim, 8 * w, 2),
            nn.ReLU(),
            *up(8 * w, 4 * w),
            *up(4 * w, 2 * w),
            *up(2 * w, w),
            nn.ConvTranspose2d(w, 1, 4, 2, 1),
            nn.Sigmoid(),
        )

    def forward(self, z):
        return self.net(z[:, :, None, None])


def main():
    p = fm.parser(
        __file__, "Train a convolutional autoencoder.", epochs=5, batch_size=64, lr=1e-3, subfolder=lambda a: a.variant
    )
    p.add_argument("--variant", choices=list(VARIANTS), default="100_dim", help="code size, sigmoid and penalty")
    args = p.parse_args()
    code_dim, sigmoid, penalty = VARIANTS[args.variant]
    run = fm.Run(args)
    data = run.load_data()
    enc, dec = run.to_device(Encoder(code_dim, sigmoid)), run.to_device(Decoder(code_dim))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=args.lr)
    run.track(enc=enc, dec=dec, opt=opt)
    orig = data.test_x[:64]
    fm.save_grid(orig, run.out / "orig.png")

    for x in run.batches(data.train_x):
        z = enc(x)
        recon = (dec(z) - x).pow(2).sum((1, 2, 3)).mean()
        code_l2 = z.pow(2).sum(1).mean()
        loss = recon + penalty * code_l2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.log(recon=recon, code_l2=code_l2)
        if run.frame_due:
            with fm.evaluating(enc, dec):
                run.save_frame(dec(enc(orig)))

    with fm.evaluating(enc, dec):
        mse = fm.recon_mse(lambda x: dec(enc(x)), data.test_x)
        if code_dim == 2:
            codes = torch.cat([enc(data.test_x[i : i + 1000]) for i in range(0, len(data.test_x), 1000)])
            title = f"AE {args.variant}: test codes"
            fm.scatter_codes(run.out / "manifold_scatter.png", codes.cpu().numpy(), data.test_y.cpu().numpy(), title)
        if sigmoid:  # codes lie in (0, 1)^2: decode a grid over the square, and uniform draws from it
            grid = torch.linspace(0, 1, 11, device=run.device)
            z2, z1 = torch.meshgrid(grid.flip(0), grid, indexing="ij")  # z2 grows upwards, z1 to the right
            fm.save_grid(dec(torch.stack([z1.flatten(), z2.flatten()], 1)), run.out / "manifold.png", nrow=11)
            fm.save_grid(dec(torch.rand(64, 2, device=run.device)), run.out / "random.png")
    run.finish(variant=args.variant, code_dim=code_dim, recon_mse=mse)


if __name__ == "__main__":
    main()
