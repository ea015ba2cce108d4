"""MNIST, Fashion-MNIST and USPS as whole tensors on the device, 32x32, pixels in [0, 1]."""

from __future__ import annotations

import gzip
import socket
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
import torchvision.datasets.utils as tvutils

from .cli import fail

# IDX headers: magic number, then one big-endian uint32 per dimension.
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
COUNTS = {"train": 60000, "t10k": 10000}


def read_idx(path: Path, expected_count: int) -> np.ndarray:
    """Read an IDX file (gzipped or not), checking everything that can be wrong with it."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as file:
                raw = file.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        fail(f"{path}: cannot be read: {e}")
    images = "images" in path.name
    magic, header_len = (IMAGES_MAGIC, 16) if images else (LABELS_MAGIC, 8)
    if len(raw) < header_len:
        fail(f"{path}: truncated header ({len(raw)} bytes)")
    header = np.frombuffer(raw[:header_len], dtype=">u4")
    if header[0] != magic:
        fail(f"{path}: bad magic number {header[0]:#010x}, expected {magic:#010x}")
    count = int(header[1])
    if count != expected_count:
        fail(f"{path}: holds {count} items, expected {expected_count}")
    shape = (count, 28, 28) if images else (count,)
    if images and tuple(header[2:]) != (28, 28):
        fail(f"{path}: images are {header[2]}x{header[3]}, expected 28x28")
    size = int(np.prod(shape))
    body = len(raw) - header_len
    if body != size:
        fail(
            f"{path}: short read: {body} of {size} data bytes"
            if body < size
            else f"{path}: {body - size} bytes too many"
        )
    data = np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)
    if not images and data.max() > 9:
        fail(f"{path}: label {data.max()} is outside 0..9")
    return data


def raw_file(raw: Path, stem: str) -> Path | None:
    """`raw/stem` or `raw/stem.gz`, whichever is there."""
    return next((p for p in (raw / stem, raw / f"{stem}.gz") if p.is_file()), None)


def missing_files(dataset: type, root: Path) -> list[Path]:
    """The IDX files of `dataset` (a torchvision class) absent from `root/<its name>/raw/`."""
    raw = root / dataset.__name__ / "raw"
    return [raw / Path(url).stem for url, _ in dataset.resources if not raw_file(raw, Path(url).stem)]


class _ReadsIDX:
    """torchvision's dataset class, reading `raw/` gzipped or not and without an md5 check.

    An offline copy may differ from the canonical bytes (a known copy's train-images were rebuilt
    within one grey level), and an md5 check would then reject a good file and try to download.
    """

    def _check_exists(self) -> bool:
        return not missing_files(type(self), Path(self.root))

    def _load_data(self):
        split = "train" if self.train else "t10k"
        raw = Path(self.raw_folder)
        images = read_idx(raw_file(raw, f"{split}-images-idx3-ubyte"), COUNTS[split])
        labels = read_idx(raw_file(raw, f"{split}-labels-idx1-ubyte"), COUNTS[split])
        return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


class MNIST(_ReadsIDX, torchvision.datasets.MNIST):
    pass


class FashionMNIST(_ReadsIDX, torchvision.datasets.FashionMNIST):
    pass


DATASETS = {"MNIST": MNIST, "FashionMNIST": FashionMNIST}


@dataclass(eq=False)  # compared and hashed by identity: metrics.py keeps figures of the real images per Split
class Split:
    """Images (N, 1, 32, 32) float in [0, 1] and labels (N,) int64, both on one device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def pad_to_32(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 32, 32) in [0, 1] with a 2-pixel zero border."""
    return F.pad(images.unsqueeze(1).float().div_(255), (2, 2, 2, 2))


def flat_digits(images: torch.Tensor) -> torch.Tensor:
    """32x32 images -> the 28x28 digits inside them, flat (N, 784), for fully connected models."""
    return images[:, 0, 2:30, 2:30].flatten(1)


def balanced_subset(labels: torch.Tensor, n: int, classes: int = 10) -> torch.Tensor:
    """Indices of n labelled examples, n / classes random ones of each class (torch's global generator)."""
    if n % classes:
        fail(f"argument --labels: {n} is not a multiple of {classes}")
    chosen = []
    for c in range(classes):
        members = (labels == c).nonzero().flatten()
        if len(members) < n // classes:
            fail(f"argument --labels: {n} needs {n // classes} examples of each class, class {c} has {len(members)}")
        chosen.append(members[torch.randperm(len(members), device=labels.device)[: n // classes]])
    return torch.cat(chosen)


def pad_flat_digits(flat: torch.Tensor) -> torch.Tensor:
    """Flat (N, 784) digits -> 32x32 images with the zero border, inverse of `flat_digits`."""
    return F.pad(flat.view(-1, 1, 28, 28), (2, 2, 2, 2))


def download(name: str, missing: Path, fetch: Callable[[], object]) -> None:
    """fetch() a data set that lacks the file `missing`; any network or disk failure ends in one line."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        fetch()
    except Exception as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        fail(f"{missing} is missing and downloading {name} failed ({reason})")
    finally:
        socket.setdefaulttimeout(previous)


def load(name: str, root: Path, device: torch.device, limit: int | None = None) -> Split:
    """Read (or, when absent and the network is there, download) a data set under `root/name/raw/`."""
    if not root.is_dir():
        fail(f"data folder {root} does not exist (set --data-root or FUNMNIST_DATA)")
    cls = DATASETS[name]
    if missing := missing_files(cls, root):
        download(name, missing[0], lambda: cls(str(root), train=True, download=True))
    train, test = cls(str(root), train=True), cls(str(root), train=False)
    n = limit or len(train.data)
    return Split(
        pad_to_32(train.data[:n]).to(device),
        train.targets[:n].to(device),
        pad_to_32(test.data).to(device),
        test.targets.to(device),
    )


USPS_COUNTS = {"train": 7291, "test": 2007}
USPS_FRAMINGS = ("full", "mnist")


def usps_images(images: torch.Tensor, framing: str) -> torch.Tensor:
    """uint8 (N, 16, 16) -> float (N, 1, 32, 32) in [0, 1], framed as `framing` says.

    `full` resizes 16 -> 32, so that the digit fills the frame as in the domain-adaptation literature;
    `mnist` resizes 16 -> 20 and pads to 32: MNIST's own 20-pixel box inside a 28x28 field, padded.
    """
    x = images.unsqueeze(1).float().div_(255)
    if framing == "full":
        return F.interpolate(x, size=32, mode="bilinear", align_corners=False).clamp_(0, 1)
    return F.pad(F.interpolate(x, size=20, mode="bilinear", align_corners=False).clamp_(0, 1), (6, 6, 6, 6))


def full_to_mnist_framing(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, 32, 32) images framed `full` -> the same framed `mnist`: shrunk to 20 and padded to 32.

    How the evaluator, which reads USPS framed `mnist` far better (`misc/usps_framing.py`), reads a
    digit drawn to fill the frame.
    """
    shrunk = F.interpolate(images.float(), size=20, mode="bilinear", align_corners=False, antialias=True)
    return F.pad(shrunk.clamp_(0, 1), (6, 6, 6, 6))


def read_usps(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One USPS split through torchvision's reader (no md5 check), with every count and label checked."""
    split = "train" if train else "test"
    path = root / torchvision.datasets.USPS.split_list[split][1]
    try:
        dataset = torchvision.datasets.USPS(str(root), train=train)
    except (OSError, EOFError, ValueError, UnicodeDecodeError, IndexError) as e:
        fail(f"{path}: cannot be read as USPS ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    images, labels = torch.from_numpy(dataset.data), torch.tensor(dataset.targets, dtype=torch.int64)
    if len(images) != USPS_COUNTS[split]:
        fail(f"{path}: holds {len(images)} digits, expected {USPS_COUNTS[split]}")
    if bad := labels[(labels < 0) | (labels > 9)].tolist():
        fail(f"{path}: label {bad[0] + 1} is outside 1..10")  # the file counts digits 0..9 as 1..10
    return images, labels


def load_usps(root: Path, device: torch.device, framing: str = "full", limit: int | None = None) -> Split:
    """USPS (7,291 training, 2,007 test digits) from `root/USPS/`, downloaded there when absent and online."""
    if not root.is_dir():
        fail(f"data folder {root} does not exist (set --data-root or FUNMNIST_DATA)")
    folder = root / "USPS"
    for url, filename, md5 in torchvision.datasets.USPS.split_list.values():
        if not (folder / filename).is_file():
            download("USPS", folder / filename, partial(tvutils.download_url, url, str(folder), filename, md5=md5))
    (train_x, train_y), (test_x, test_y) = read_usps(folder, True), read_usps(folder, False)
    n = limit or len(train_x)
    return Split(
        usps_images(train_x[:n], framing).to(device),
        train_y[:n].to(device),
        usps_images(test_x, framing).to(device),
        test_y.to(device),
    )


def edges(images: torch.Tensor) -> torch.Tensor:
    """The outer contour of each digit: its 3x3 dilation minus the image, pixels in [0, 1].

    Coupled GAN's code makes its edge digits this way; a lit pixel gives the ring of its 8 neighbours.
    """
    return (F.max_pool2d(images, 3, stride=1, padding=1) - images).clamp_(0, 1)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of epoch `epoch`: a function of (seed, epoch) alone, so a resumed run repeats it."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


def random_shift(images: torch.Tensor, pixels: int) -> torch.Tensor:
    """Translate each image by its own random whole-pixel offset in [-pixels, pixels]^2, zero fill.

    Done for the whole batch at once by indexing a padded copy: no per-sample Python.
    """
    n, _, h, w = images.shape
    padded = F.pad(images, (pixels,) * 4)
    dy = torch.randint(0, 2 * pixels + 1, (n, 1), device=images.device)
    dx = torch.randint(0, 2 * pixels + 1, (n, 1), device=images.device)
    rows = (torch.arange(h, device=images.device) + dy)[:, :, None]
    cols = (torch.arange(w, device=images.device) + dx)[:, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded[batch, 0, rows, cols].unsqueeze(1)
