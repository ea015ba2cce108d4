"""Conditional and structured GANs: the class head on logits, InfoGAN's information loss, code matching."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import QUALITY, SMALL, load_script, run_script, softplus

import funmnist as fm

CGAN = load_script("Conditional_GAN/train.py")
ACGAN = load_script("ACGAN/train.py")
INFOGAN = load_script("InfoGAN/train.py")


def test_conditional_generators_make_images_in_the_unit_range():
    z, labels = torch.randn(4, 100), torch.tensor([0, 3, 7, 9])
    for module in (CGAN, ACGAN):
        images = module.Generator()(z, labels)
        assert images.shape == (4, 1, 32, 32) and images.min() >= 0 and images.max() <= 1
    images = INFOGAN.Generator()(torch.randn(4, 62), labels, torch.rand(4, 2))
    assert images.shape == (4, 1, 32, 32)


def test_conditional_discriminator_reads_the_label():
    disc = CGAN.Discriminator().eval()
    x = torch.rand(10, 1, 32, 32)
    scores = [disc(x, torch.full((10,), digit)) for digit in (0, 5)]
    assert scores[0].shape == (10,) and not torch.allclose(scores[0], scores[1])


def test_conditional_gan_losses_smooth_only_the_real_target():
    # real logit ln 9 is sigma = 0.9, the smoothed target: its term is the entropy of 0.9, its least value
    entropy = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    best = torch.tensor([math.log(9)])
    assert CGAN.discriminator_loss(best, torch.tensor([-1.0])).item() == pytest.approx(entropy + softplus(-1.0))
    for other in (best - 0.5, best + 0.5):
        assert CGAN.discriminator_loss(other, torch.tensor([-1.0])).item() > entropy + softplus(-1.0)
    # the fakes' target stays 0, and the generator's 1
    assert CGAN.generator_loss(torch.tensor([-1.0])).item() == pytest.approx(softplus(1.0))


def test_acgan_class_loss_is_cross_entropy_on_logits():
    logits = torch.tensor([[2.0] + [0.0] * 9, [0.0] * 10])
    expected = (-math.log(math.exp(2) / (math.exp(2) + 9)) + math.log(10)) / 2
    assert ACGAN.class_loss(logits, torch.tensor([0, 4])).item() == pytest.approx(expected)
    # a softmax in front would score confident logits near the uniform ln 10: the loss must keep falling
    confident = torch.tensor([[20.0] + [0.0] * 9])
    assert ACGAN.class_loss(confident, torch.tensor([0])).item() < 1e-6


def test_acgan_discriminator_gives_a_source_logit_and_class_logits():
    source, classes = ACGAN.Discriminator().eval()(torch.rand(6, 1, 32, 32))
    assert source.shape == (6,) and classes.shape == (6, 10)
    assert not torch.allclose(classes.sum(1), torch.ones(6))  # logits, not probabilities


def test_acgan_losses_add_the_class_terms():
    zero, uniform, labels = torch.tensor([0.0]), torch.zeros(1, 10), torch.tensor([1])
    # each source term is ln 2 at logit 0, each class term ln 10 at uniform logits
    assert ACGAN.discriminator_loss(zero, uniform, zero, labels).item() == pytest.approx(2 * math.log(2) + math.log(10))
    right = torch.tensor([[0.0, 9.0] + [0.0] * 8])  # the discriminator's class term is on the real digits
    expected = 2 * math.log(2) - math.log(math.exp(9) / (math.exp(9) + 9))
    assert ACGAN.discriminator_loss(zero, right, zero, labels).item() == pytest.approx(expected)
    assert ACGAN.generator_loss((zero, uniform), labels).item() == pytest.approx(math.log(2) + math.log(10))


def test_acgan_generator_uses_the_noise():
    gen = ACGAN.Generator().eval()
    digits = torch.full((4,), 3)
    images = gen(torch.randn(4, 100), digits)
    assert (images[0] - images[1:]).abs().amax() > 1e-3
    assert not torch.allclose(images, gen(torch.randn(4, 100), torch.full((4,), 5)))


def test_infogan_information_loss_against_hand_values():
    logits = torch.zeros(2, 10)
    means = torch.tensor([[0.5, -1.0], [0.0, 0.0]])
    continuous = torch.tensor([[1.0, -1.0], [0.0, 1.0]])
    # ln 10 for the uniform categorical; per image: (0.25 / 2 + 0) and (0 + 1 / 2), plus ln(2 pi) / 2 per code
    expected = math.log(10) + (0.125 + 0.5) / 2 + math.log(2 * math.pi)
    loss = INFOGAN.information_loss(logits, torch.tensor([3, 7]), means, continuous)
    assert loss.item() == pytest.approx(expected)
    weighted = INFOGAN.information_loss(logits, torch.tensor([3, 7]), means, continuous, continuous_weight=0.1)
    assert weighted.item() == pytest.approx(math.log(10) + 0.1 * (expected - math.log(10)))
    sure = torch.full((1, 10), -30.0)
    sure[0, 2] = 30.0
    perfect = INFOGAN.information_loss(sure, torch.tensor([2]), torch.zeros(1, 2), torch.zeros(1, 2))
    assert perfect.item() == pytest.approx(math.log(2 * math.pi), abs=1e-6)


@pytest.mark.parametrize("q_hidden", [128, 0])
def test_infogan_q_shares_the_discriminator_trunk(q_hidden):
    disc = INFOGAN.Discriminator(q_hidden=q_hidden).eval()
    source, category_logits, means = disc(torch.rand(3, 1, 32, 32))
    assert source.shape == (3,) and category_logits.shape == (3, 10) and means.shape == (3, 2)
    (category_logits.sum() + means.sum()).backward()
    assert disc.trunk[0].weight.grad.abs().sum() > 0 and disc.source.weight.grad is None


def test_infogan_distort_moves_and_restrokes_each_image_apart(mnist):
    x = mnist.train_x[:300]
    torch.manual_seed(0)
    y = INFOGAN.distort(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    copies = INFOGAN.distort(x[:1].repeat(8, 1, 1, 1))
    assert all(not torch.allclose(copies[0], c) for c in copies[1:])  # a transform of its own for each image
    ink, distorted_ink = x.sum((1, 2, 3)), y.sum((1, 2, 3))
    ratio = distorted_ink / ink
    # scaled by 0.85-1.15: ink by 0.72-1.32; a dilation adds far more, half an erosion takes a part
    assert (ratio > 1.5).float().mean() == pytest.approx(1 / 3, abs=0.08)
    assert (ratio < 0.8).float().mean() == pytest.approx(1 / 3, abs=0.08)
    # the digit's centre of ink moves by at most the shift (2 pixels) and the rotation about the centre
    grid = torch.arange(32.0)
    centre = torch.stack([(img.sum(1) * grid).sum() / img.sum() for img in (x[:, 0], y[:, 0])])
    assert (centre[0] - centre[1]).abs().max() < 4.5


def test_code_acc_matches_codes_to_digits_one_to_one():
    labels = np.repeat(np.arange(10), 5)
    permutation = np.array([3, 7, 0, 9, 1, 4, 8, 2, 6, 5])
    assert fm.code_acc(permutation[labels], labels) == 1.0
    wrong = permutation[labels].copy()
    wrong[:5] = permutation[1]  # every 0 given the code of 1: the one-to-one matching counts them wrong
    assert fm.code_acc(wrong, labels) == pytest.approx(45 / 50)
    assert fm.code_acc(np.zeros(50, dtype=int), labels) == pytest.approx(5 / 50)  # one code: one digit at most


def test_conditional_metrics_score_the_requested_class(mnist):
    by_class = [mnist.train_x[mnist.train_y == digit][:100] for digit in range(10)]

    def right(labels):  # real images of the requested digits
        return torch.stack([by_class[d][i % 100] for i, d in enumerate(labels.tolist())])

    def shifted(labels):  # real images, one digit off
        return right((labels + 1) % 10)

    m = fm.conditional_metrics(right, mnist, n=1000)
    assert m["cond_acc"] > 0.98 and m["evaluator_test_acc"] > 0.99 and QUALITY <= m.keys()
    assert fm.conditional_metrics(shifted, mnist, n=1000)["cond_acc"] < 0.02


@pytest.mark.parametrize(
    "folder, figures",
    [
        ("Conditional_GAN", ["sample.png"]),
        ("ACGAN", ["sample.png", "fix_noise.png"]),
        ("InfoGAN", ["categorical.png", "continuous_1.png", "continuous_2.png"]),
    ],
)
def test_conditional_gan_smoke(tmp_path, folder, figures):
    result = run_script(f"{folder}/train.py", *SMALL, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("real.png", "process.gif", "loss.png", "metrics.json", *figures):
        assert (tmp_path / name).is_file(), name
    assert len(list(tmp_path.glob("step_*.png"))) == 16
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["model"] == folder and QUALITY <= m.keys()
    if folder == "InfoGAN":
        assert 0.1 <= m["code_acc"] <= 1
    else:
        assert 0 <= m["cond_acc"] <= 1 and m["evaluator_test_acc"] > 0.99
    if folder != "InfoGAN":  # the moving average is measured, and the raw generator beside it
        raw = m["raw_generator"]
        assert QUALITY | {"cond_acc"} <= raw.keys() and raw["fid"] != m["fid"]
