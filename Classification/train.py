"""Classify MNIST digits with a convolutional network.

    python Classification/train.py        # 10 epochs, about 7 minutes on a 2-core CPU

Network (the original README's): four stride-2 4x4 convolutions, 32x32 -> 16 -> 8 -> 4 -> 2, each
followed by LeakyReLU(0.2) and BatchNorm, then one linear layer from 512x2x2 features to 10 logits.

Objective: cross-entropy on the logits, -log softmax(f(x))_y. (The original applied BCE to softmax
outputs against one-hot labels: that gradient vanishes for confident mistakes.)

Recipe: AdamW with a one-cycle learning rate, label smoothing 0.1, and each training batch shifted
by up to 2 pixels (its page: what each part of the recipe is worth). Page: Classification/README.md
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm


class Net(nn.Module):
    def __init__(self):
        super().__init__()

        def down(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2), nn.BatchNorm2d(c_out)]

        self.features = nn.Sequential(*down(1, 64), *down(64, 128), *down(128, 256), *down(256, 512), nn.Flatten())
        self.classifier = nn.Linear(512 * 2 * 2, 10)

    def forward(self, x):
        return self.classifier(self.features(x))


def main():
    p = fm.parser(__file__, "Classify MNIST digits with a CNN.", epochs=10, batch_size=128, lr=3e-3)
    p.add_argument(
        "--shift", type=fm.non_negative_int, default=2, help="random translation of training images, in pixels"
    )
    p.add_argument(
        "--label-smoothing", type=fm.fraction, default=0.1, help="share of the target spread over all classes"
    )
    args = p.parse_args()
    run = fm.Run(args)
    data = run.load_data()
    net = run.to_device(Net())
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=run.total_steps)
    run.track(net=net, opt=opt, sched=sched)
    fm.save_grid(data.train_x[:64], run.out / "real.png")
    probe = data.train_x[:10_000], data.train_y[:10_000]  # train accuracy on clean images, as on test

    for x, y in run.batches(data.train_x, data.train_y):
        loss = F.cross_entropy(net(fm.random_shift(x, args.shift)), y, label_smoothing=args.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run.log(loss=loss)
        if run.epoch_done:
            run.log_epoch(train_acc=fm.accuracy(net, *probe), test_acc=fm.accuracy(net, data.test_x, data.test_y))

    epochs = [e["epoch"] for e in run.epoch_log]
    curves = {split: (epochs, [e[f"{split}_acc"] for e in run.epoch_log]) for split in ("train", "test")}
    fm.plot_curves(run.out / "accuracy.png", curves, "epoch", "accuracy", title="Classification")
    first_99 = next((e["epoch"] for e in run.epoch_log if e["test_acc"] >= 0.99), None)
    run.finish(test_acc=fm.accuracy(net, data.test_x, data.test_y), first_epoch_test_acc_99=first_99)


if __name__ == "__main__":
    main()
