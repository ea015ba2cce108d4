"""Images per second of Classification training: the project's in-memory data path vs a DataLoader.

    python benchmarks/data_path.py [--steps 100] [--batch-size 128]

Both paths train the same network (Classification/train.py's Net, channels-last) with the same
batch size, optimiser and thread count. The in-memory path indexes a tensor that already holds the
padded images; the DataLoader path is the usual torchvision one: per-sample PIL -> Pad -> ToTensor
transforms and collation in the main process (num_workers=0, so no extra cores are used).
It also times one epoch of batches with no training at all: the data path's own cost.
"""

import argparse
import importlib.util
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from torch.utils.data import DataLoader

import funmnist as fm
from funmnist.cli import default_data_root, pick_device
from funmnist.data import MNIST, epoch_permutation
from funmnist.run import provenance


def classification_net() -> type:
    spec = importlib.util.spec_from_file_location("classification", fm.REPO_ROOT / "Classification" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Net


def images_per_second(batches, steps: int, device: torch.device, warmup: int = 5) -> float:
    torch.manual_seed(0)
    net = classification_net()().to(device, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    seen = 0
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            start, seen = time.perf_counter(), 0
        if i == warmup + steps:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def epoch_seconds(batches, device: torch.device) -> float:
    """Seconds to produce one epoch of batches on the device, with no training: the data path alone."""
    start = time.perf_counter()
    for x, y in batches:
        x, y = x.to(device), y.to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=fm.positive_int, default=100)
    p.add_argument("--batch-size", type=fm.positive_int, default=128)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--data-root", type=Path, default=default_data_root())
    p.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"), help="where the figures go")
    args = p.parse_args()
    device = pick_device(args.device)

    data = fm.load("MNIST", args.data_root, device)
    order = epoch_permutation(len(data.train_x), 0, 0).to(device)

    def in_memory():
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            picked = order[i : i + args.batch_size]
            yield data.train_x[picked], data.train_y[picked]

    dataset = MNIST(str(args.data_root), train=True, transform=T.Compose([T.Pad(2), T.ToTensor()]))
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=0, drop_last=True)

    memory = images_per_second(in_memory(), args.steps, device)
    plain = images_per_second(iter(loader), args.steps, device)
    memory_epoch, plain_epoch = epoch_seconds(in_memory(), device), epoch_seconds(loader, device)
    print(f"device {device}, {torch.get_num_threads()} threads, batch {args.batch_size}, {args.steps} steps each")
    print(f"training, in-memory tensors : {memory:8.0f} images/s")
    print(f"training, DataLoader        : {plain:8.0f} images/s")
    print(f"training ratio              : {memory / plain:8.2f}x")
    print(f"one epoch of batches alone  : {memory_epoch:.2f} s in memory, {plain_epoch:.2f} s DataLoader")
    record = provenance(device)
    record |= {"threads": torch.get_num_threads(), "batch_size": args.batch_size, "steps": args.steps}
    record |= {"in_memory": round(memory), "dataloader": round(plain), "ratio": round(memory / plain, 2)}
    record |= {"epoch_seconds_in_memory": round(memory_epoch, 3), "epoch_seconds_dataloader": round(plain_epoch, 2)}
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
