"""The edge domain, pix2pix's losses and figures, and its smoke runs."""

import json
import math

import pytest
import torch
from conftest import SMALL, load_script, run_script, softplus

import funmnist as fm


@pytest.fixture(scope="module")
def pix2pix():
    return load_script("pix2pix/train.py")


def test_a_lit_pixel_has_the_ring_of_its_eight_neighbours_for_edges():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1
    ring = torch.zeros(5, 5)
    ring[1:4, 1:4] = 1
    ring[2, 2] = 0
    assert torch.equal(fm.edges(x)[0, 0], ring)


def test_edges_of_digits_lie_outside_them(mnist):
    x = mnist.test_x[:100]
    e = fm.edges(x)
    assert e.shape == x.shape and e.min() >= 0 and e.max() <= 1
    assert (e * (x == 1)).max() == 0  # a fully lit pixel is inside the digit, never its contour
    assert (e * (x < 0.5)).sum() > 5 * (e * (x >= 0.5)).sum()  # the contour's ink lies around the digit


def test_paired_metrics_on_known_images():
    target = torch.zeros(2, 1, 4, 4)
    output = target.clone()
    output[0, 0, 0, :] = 0.5  # image 0: 4 of 16 pixels off by 0.5
    figures = fm.paired_metrics(output, target)
    assert figures["l1"] == pytest.approx(4 * 0.5 / 32)
    # image 0: MSE 1/16, PSNR 10 log10(16); image 1 perfect: capped at 100 dB
    assert figures["psnr"] == pytest.approx((10 * math.log10(16) + 100) / 2)


def test_losses_by_hand(pix2pix):
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    # D: -log sigma(2), -log sigma(0) for the real; -log(1 - sigma(-1)), -log(1 - sigma(1)) for the fakes; halved
    expected_d = 0.5 * ((softplus(-2) + softplus(0)) / 2 + (softplus(-1) + softplus(1)) / 2)
    assert pix2pix.discriminator_loss(real, fake).item() == pytest.approx(expected_d)
    output, target = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 1.0]])
    # G: -log sigma(D) + 100 * mean |G(e) - x| = (softplus(1) + softplus(-1)) / 2 + 100 * 0.25
    expected_g = (softplus(1) + softplus(-1)) / 2 + 100 * 0.25
    assert pix2pix.generator_loss(fake, output, target, 100).item() == pytest.approx(expected_g)
    assert pix2pix.generator_loss(None, output, target, 100).item() == pytest.approx(25)


def test_unet_passes_the_skip_connections(pix2pix):
    net = pix2pix.UNet(8)
    e = torch.rand(3, 1, 32, 32)
    assert net(e).shape == (3, 1, 32, 32)
    # the outermost skip: zeroing the decoder's deeper path still leaves the output depending on the input
    for layer in (net.d2, net.d3, net.d4, net.d5):
        for p in layer.parameters():
            p.data.zero_()
    net.eval()
    assert not torch.allclose(net(e), net(torch.rand(3, 1, 32, 32)))


@pytest.mark.parametrize("variant", [[], ["--no-gan"]])
def test_smoke_run_writes_its_files(tmp_path, variant):
    result = run_script("pix2pix/train.py", *SMALL, *variant, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("real.png", "translation.png", "process.gif", "loss.png", "checkpoint.pt"):
        assert (tmp_path / name).is_file(), name
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["model"] == "pix2pix" and m["steps"] == 16
    assert 0 <= m["translation_acc"] <= 1 and 0 < m["l1"] < 1 and m["psnr"] > 0 and m["fid"] > 0
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ("disc" in state["objects"]) == (variant == [])
    assert ("d" in state["losses"]) == (variant == [])
