import gzip
import shutil
import struct
from urllib.error import URLError

import numpy as np
import pytest
import torch
from conftest import DATA_ROOT

import funmnist as fm
from funmnist.data import MNIST, epoch_permutation

RAW = DATA_ROOT / "MNIST" / "raw"
STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def raw_bytes(stem: str) -> bytes:
    plain = RAW / stem
    return plain.read_bytes() if plain.exists() else gzip.open(RAW / f"{stem}.gz").read()


def root_with(tmp_path, **replaced: bytes):
    """A data root whose raw/ files are the real ones, except those given (written gzipped)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in STEMS:
        if stem.replace("-", "_") in replaced:
            (raw / f"{stem}.gz").write_bytes(replaced[stem.replace("-", "_")])
        else:
            (raw / f"{stem}.gz").symlink_to(next(RAW.glob(f"{stem}*")).resolve())
    return tmp_path


def test_shapes_range_and_labels(mnist):
    assert mnist.train_x.shape == (60000, 1, 32, 32) and mnist.test_x.shape == (10000, 1, 32, 32)
    assert mnist.train_x.dtype == torch.float32 and mnist.train_y.dtype == torch.int64
    assert mnist.train_x.min() == 0 and mnist.train_x.max() == 1
    assert mnist.train_y[:5].tolist() == [5, 0, 4, 1, 9]  # MNIST's first training labels
    assert mnist.test_y[:5].tolist() == [7, 2, 1, 0, 4]
    assert torch.bincount(mnist.train_y).min() > 5000  # all ten digits, roughly balanced
    assert abs(mnist.train_x.mean().item() - 0.13071 * 784 / 1024) < 1e-4  # the known MNIST mean, padded


def test_zero_padding_and_interior(mnist):
    x = mnist.train_x
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert x[:, 0, border].abs().max() == 0
    first = np.frombuffer(raw_bytes(STEMS[0]), dtype=np.uint8, offset=16)[:784].reshape(28, 28)
    assert torch.equal((x[0, 0, 2:30, 2:30] * 255).round().to(torch.uint8), torch.from_numpy(first.copy()))


def test_limit_takes_the_first_images(mnist):
    small = fm.load("MNIST", DATA_ROOT, torch.device("cpu"), limit=100)
    assert len(small.train_x) == 100 and torch.equal(small.train_x, mnist.train_x[:100])
    assert len(small.test_x) == 10000


def test_plain_and_gzipped_files_read_the_same(tmp_path, mnist):
    root = root_with(tmp_path)
    for stem in STEMS[2:]:
        (root / "MNIST" / "raw" / f"{stem}.gz").unlink()
        (root / "MNIST" / "raw" / stem).write_bytes(raw_bytes(stem))
    data = fm.load("MNIST", root, torch.device("cpu"))
    assert torch.equal(data.test_x, mnist.test_x) and torch.equal(data.test_y, mnist.test_y)


def test_seeded_permutation():
    a = epoch_permutation(1000, seed=3, epoch=2)
    assert torch.equal(a, epoch_permutation(1000, seed=3, epoch=2))
    assert not torch.equal(a, epoch_permutation(1000, seed=3, epoch=3))
    assert not torch.equal(a, epoch_permutation(1000, seed=4, epoch=2))
    assert torch.equal(a.sort().values, torch.arange(1000))


def test_random_shift_moves_each_image_by_its_own_offset(mnist):
    torch.manual_seed(0)
    x = mnist.train_x[:200]
    shifted = fm.random_shift(x, 2)
    offsets = set()
    for original, moved in zip(x, shifted, strict=True):
        # The 2-pixel zero border makes a shift of <= 2 the same as a roll.
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(torch.roll(original, (dy, dx), dims=(1, 2)), moved)
        ]
        assert matches, "an image was changed by more than a translation of <= 2 pixels"
        offsets.add(matches[0])
    assert len(offsets) == 25  # offsets are drawn per image, not per batch
    assert torch.equal(fm.random_shift(x, 0), x)


def labels_file(magic=0x801, count=60000, labels=None) -> bytes:
    labels = np.zeros(count, dtype=np.uint8) if labels is None else labels
    return gzip.compress(struct.pack(">II", magic, count) + labels.tobytes())


@pytest.mark.parametrize(
    "content, phrase",
    [
        (labels_file(magic=0x803), "bad magic number 0x00000803, expected 0x00000801"),
        (labels_file(count=59999), "holds 59999 items, expected 60000"),
        (gzip.compress(struct.pack(">II", 0x801, 60000) + bytes(59000)), "short read: 59000 of 60000"),
        (labels_file(labels=np.full(60000, 12, dtype=np.uint8)), "label 12 is outside 0..9"),
        (b"this is not gzip", "cannot be read"),
        (gzip.compress(b"\x00\x00"), "truncated header"),
    ],
)
def test_corrupt_labels_stop_with_one_line(tmp_path, capsys, content, phrase):
    root = root_with(tmp_path, train_labels_idx1_ubyte=content)
    with pytest.raises(SystemExit) as stop:
        fm.load("MNIST", root, torch.device("cpu"))
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train-labels-idx1-ubyte.gz" in err and phrase in err, err


def test_truncated_gzip_of_images(tmp_path, capsys):
    whole = next(RAW.glob("t10k-images*")).read_bytes()
    if not whole.startswith(b"\x1f\x8b"):
        whole = gzip.compress(whole)
    root = root_with(tmp_path, t10k_images_idx3_ubyte=whole[: len(whole) // 2])
    with pytest.raises(SystemExit) as stop:
        fm.load("MNIST", root, torch.device("cpu"))
    assert stop.value.code == 2
    assert "t10k-images-idx3-ubyte.gz: cannot be read" in capsys.readouterr().err


def test_missing_folder_and_failed_download(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as stop:
        fm.load("MNIST", tmp_path / "nowhere", torch.device("cpu"))
    assert stop.value.code == 2 and "does not exist" in capsys.readouterr().err

    def offline(self):
        raise URLError("no network")

    monkeypatch.setattr(MNIST, "download", offline)
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    shutil.copy(next(RAW.glob("t10k-labels*")), tmp_path / "MNIST" / "raw")
    with pytest.raises(SystemExit) as stop:
        fm.load("MNIST", tmp_path, torch.device("cpu"))
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert "train-images-idx3-ubyte is missing and downloading MNIST failed" in err and "no network" in err
