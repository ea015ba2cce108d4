"""Semi-supervised GAN, transfer learning and spatial transformers: their pieces and smoke runs."""

import json
import math

import pytest
import torch
from conftest import SMALL, assert_one_line_error, load_script, run_script

import funmnist as fm

SGAN = load_script("SGAN/train.py")
STN = load_script("Spatial_Transformer/train.py")


def test_sgan_unsupervised_loss_treats_the_logits_as_k_real_classes():
    # zero logits: Z = 10, D = 10/11; 1/2 [-log D(x) - log(1 - D(G(z)))] = 1/2 [ln 1.1 + ln 11]
    zeros = torch.zeros(3, 10)
    assert SGAN.unsupervised_loss(zeros, zeros).item() == pytest.approx(0.5 * (math.log(1.1) + math.log(11)))
    # confident real and confidently fake: D(x) -> 1 and D(G(z)) -> 0, the loss -> 0
    sure_real, sure_fake = torch.full((1, 10), 30.0), torch.full((1, 10), -30.0)
    assert SGAN.unsupervised_loss(sure_real, sure_fake).item() == pytest.approx(0, abs=1e-6)


def test_feature_matching_compares_batch_means():
    real = torch.tensor([[1.0, 2.0], [3.0, 2.0]])  # mean (2, 2)
    fake = torch.tensor([[0.0, 2.0], [0.0, 4.0]])  # mean (0, 3)
    assert SGAN.feature_matching(real, fake).item() == pytest.approx((4 + 1) / 2)
    assert SGAN.feature_matching(real, real.flip(0)).item() == 0  # the same mean, whatever the samples


def test_balanced_subset_takes_each_class_alike(mnist):
    torch.manual_seed(0)
    chosen = fm.balanced_subset(mnist.train_y, 100)
    assert len(chosen.unique()) == 100 and mnist.train_y[chosen].bincount().tolist() == [10] * 10
    torch.manual_seed(1)
    assert not torch.equal(chosen, fm.balanced_subset(mnist.train_y, 100))


def test_sgan_discriminator_noise_only_in_training():
    disc = SGAN.Discriminator()
    x = torch.rand(2, 784)
    assert not torch.equal(disc(x), disc(x))
    disc.eval()
    assert torch.equal(disc(x), disc(x)) and disc(x).shape == (2, 10)


@pytest.mark.parametrize("flags, files", [([], ["sample.png", "process.gif"]), (["--no-gan"], [])])
def test_sgan_smoke(tmp_path, flags, files):
    result = run_script("SGAN/train.py", *SMALL, "--labels", "50", *flags, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("real.png", "loss.png", "accuracy.png", "metrics.json", *files):
        assert (tmp_path / name).is_file(), name
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["gan"] == (not flags) and m["labels"] == 50 and 0 <= m["test_acc"] <= 1


def test_sgan_refuses_labels_it_cannot_spread_over_the_digits(tmp_path):
    result = run_script("SGAN/train.py", "--labels", "15", "--limit", "256", "--out", tmp_path)
    assert_one_line_error(result, 2, "--labels", "multiple of 10")


def test_distortion_scales_rotates_and_is_fixed_by_its_generator(mnist):
    digits = mnist.train_x[:512]
    canvas = STN.distort(digits, torch.Generator().manual_seed(0))
    assert canvas.shape == (512, 1, 42, 42)
    # ink scales with the area, s^2 for s in [0.7, 1.2]: 0.49 to 1.44 (resampling blurs a little)
    ratio = canvas.sum((1, 2, 3)) / digits.sum((1, 2, 3))
    assert 0.45 < ratio.min() < 0.6 and 1.3 < ratio.max() < 1.5
    assert torch.equal(canvas, STN.distort(digits, torch.Generator().manual_seed(0)))
    centres = (canvas[:, 0].sum(1) * torch.arange(42.0)).sum(1) / canvas[:, 0].sum((1, 2))
    assert centres.std() > 2  # translated: the ink's column centre moves


def test_spatial_transformer_starts_as_the_identity():
    stn = STN.SpatialTransformer()
    x = torch.rand(4, 1, 42, 42)
    assert torch.allclose(stn(x), x, atol=1e-5)
    assert STN.STCNN()(x).shape == (4, 10)


def test_spatial_transformer_smoke(tmp_path):
    result = run_script("Spatial_Transformer/train.py", *SMALL, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("real.png", "stn.png", "process.gif", "loss.png", "accuracy.png", "metrics.json"):
        assert (tmp_path / name).is_file(), name
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["model"] == "Spatial_Transformer" and 0 <= m["test_acc"] <= 1 and 0 <= m["cnn_test_acc"] <= 1


def test_transfer_learning_smoke(tmp_path):
    flags = ["--limit", "300", "--labels", "20", "100", "300", "--pretrain-epochs", "1"]
    result = run_script("Transfer_Learning/train.py", *SMALL[2:], *flags, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("real.png", "transfer.png", "loss.png", "metrics.json", "pretrain/metrics.json"):
        assert (tmp_path / name).is_file(), name
    table = json.loads((tmp_path / "metrics.json").read_text())["test_acc"]
    assert set(table) == {"scratch", "probe", "fine-tune"}
    assert all(set(row) == {"20", "100", "300"} and all(0 <= a <= 1 for a in row.values()) for row in table.values())


def test_transfer_learning_refuses_more_labels_than_images(tmp_path):
    flags = ["--limit", "300", "--labels", "400", "--pretrain-epochs", "1", "--out", tmp_path]
    result = run_script("Transfer_Learning/train.py", *flags)
    assert_one_line_error(result, 2, "--labels", "400")
