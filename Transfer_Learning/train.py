"""Transfer learning: MNIST features for Fashion-MNIST, with 100, 1,000 and 60,000 labels.

    python Transfer_Learning/train.py        # -> Transfer_Learning/samples/ (pre-training: samples/pretrain/)

1. Pre-training: the Classification CNN (Classification/train.py's network) learns MNIST.
2. Fashion-MNIST from --labels labelled training images (as many of each class, chosen by --seed;
   60,000 is all of them), three ways, each with the same budget: the same steps, batch and optimiser:
    scratch     the same CNN, freshly initialised, all of it trained
    probe       the pre-trained feature extractor frozen (eval mode), a linear layer trained on its features
    fine-tune   the pre-trained feature extractor and a fresh linear layer, all of it trained
All nine learners step together: at every step each takes a batch of its own labelled images
(drawn with replacement from the 100 or 1,000; the epoch's next batch for all 60,000), so
--epochs counts passes over the full training set. Cross-entropy, Adam 1e-3.

Network (the original README's): four stride-2 4x4 convolutions 1 -> 64 -> 128 -> 256 -> 512,
32x32 -> 2x2, each followed by LeakyReLU(0.2) and BatchNorm: the feature extractor, 2048 features;
then one linear layer to 10 logits.
"""

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

import funmnist as fm

WAYS = ("scratch", "probe", "fine-tune")
FASHION_TRAIN = 60_000
FEATURES = 512 * 2 * 2  # the feature extractor's output


def feature_extractor():
    def down(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2), nn.BatchNorm2d(c_out)]

    return nn.Sequential(*down(1, 64), *down(64, 128), *down(128, 256), *down(256, 512), nn.Flatten())


def classifier(features=None):
    """Features (the given extractor, or a fresh one) and a fresh linear layer to 10 logits."""
    return nn.Sequential(features if features is not None else feature_extractor(), nn.Linear(FEATURES, 10))


def pretrain(args):
    """Step 1: the CNN on MNIST, as a run of its own (checkpointed, resumable) in <out>/pretrain/."""
    pre_args = copy.copy(args)
    pre_args.epochs, pre_args.out = args.pretrain_epochs, args.out / "pretrain"
    run = fm.Run(pre_args)
    mnist = run.load_data("MNIST")
    net = run.to_device(classifier())
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    run.track(net=net, opt=opt)
    for x, y in run.batches(mnist.train_x, mnist.train_y):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.log(loss=loss)
    run.finish(test_acc=fm.accuracy(net, mnist.test_x, mnist.test_y))
    return net[0]


def main():
    p = fm.parser(__file__, "Transfer MNIST features to Fashion-MNIST.", epochs=1, batch_size=128, lr=1e-3)
    p.add_argument("--pretrain-epochs", type=fm.positive_int, default=2, help="epochs of MNIST pre-training")
    p.add_argument(
        "--labels", type=fm.positive_int, nargs="+", default=[100, 1000, 60000], help="labelled Fashion-MNIST images"
    )
    args = p.parse_args()
    everything = min(args.limit or FASHION_TRAIN, FASHION_TRAIN)
    if max(args.labels) > everything:  # checked before the pre-training, not after
        fm.fail(f"argument --labels: {max(args.labels)} is more than the {everything} training images")
    pretrained = pretrain(args).eval()
    for param in pretrained.parameters():
        param.requires_grad_(False)

    run = fm.Run(args)
    fashion = run.load_data("FashionMNIST")
    subsets = {n: fm.balanced_subset(fashion.train_y, n) for n in args.labels if n < everything}

    @torch.no_grad()
    def frozen_features(images):
        return torch.cat([pretrained(images[i : i + 1000]) for i in range(0, len(images), 1000)])

    frozen = frozen_features(fashion.train_x)  # once: a probe's step then costs one linear layer
    learners = {}
    for n in args.labels:
        learners[f"scratch_{n}"] = run.to_device(classifier())
        learners[f"probe_{n}"] = run.to_device(nn.Linear(FEATURES, 10))
        learners[f"fine-tune_{n}"] = run.to_device(classifier(copy.deepcopy(pretrained).train().requires_grad_(True)))
    opts = {k: torch.optim.Adam(m.parameters(), lr=args.lr) for k, m in learners.items()}
    run.track(**learners, **{f"opt_{k}": o for k, o in opts.items()})
    fm.save_grid(fashion.train_x[:64], run.out / "real.png")

    for index in run.batches(torch.arange(len(fashion.train_x), device=run.device)):
        losses = {}
        for n in args.labels:
            picked = subsets[n][torch.randint(n, (len(index),), device=run.device)] if n in subsets else index
            x, y = fashion.train_x[picked], fashion.train_y[picked]
            for way in WAYS:
                key = f"{way}_{n}"
                logits = learners[key](frozen[picked] if way == "probe" else x)
                losses[key] = F.cross_entropy(logits, y)
                opts[key].zero_grad(set_to_none=True)
                losses[key].backward()
                opts[key].step()
        run.log(**losses)

    test_features = frozen_features(fashion.test_x)
    table = {way: {} for way in WAYS}
    for n in args.labels:
        for way in WAYS:
            images = test_features if way == "probe" else fashion.test_x
            table[way][str(n)] = fm.accuracy(learners[f"{way}_{n}"], images, fashion.test_y)
    curves = {way: (args.labels, [table[way][str(n)] for n in args.labels]) for way in WAYS}
    fm.plot_curves(run.out / "transfer.png", curves, "labelled Fashion-MNIST images", "test accuracy", logx=True)
    run.finish(test_acc=table, labels=args.labels)


if __name__ == "__main__":
    main()
