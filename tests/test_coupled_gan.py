"""Coupled GAN: its shared layers, losses, pair figures and smoke runs."""

import json
from argparse import Namespace

import pytest
import torch
from conftest import QUALITY, SMALL, assert_one_line_error, load_script, run_script, softplus

import funmnist as fm


@pytest.fixture(scope="module")
def cogan():
    return load_script("Coupled_GAN/train.py")


def parameter_ids(*modules):
    return {id(p) for m in modules for p in m.parameters()}


@pytest.mark.parametrize("sharing, private", [(True, 1), (False, 1), (True, 2)])
def test_generators_share_all_but_their_last_layers(cogan, sharing, private):
    gen = cogan.CoupledGenerators(z_dim=10, w=4, sharing=sharing, private=private)
    first, second = parameter_ids(gen.trunk1, gen.last1), parameter_ids(gen.trunk2, gen.last2)
    assert first & second == (parameter_ids(gen.trunk1) if sharing else set())
    assert parameter_ids(gen.last1).isdisjoint(parameter_ids(gen.last2))
    own = [type(m) for m in gen.last1.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert own == [torch.nn.ConvTranspose2d] * (private - 1) + [torch.nn.Conv2d]
    assert gen.last1[-2].stride == (1, 1)  # the conv to the pixels is stride 1, as the paper's
    assert gen.trunk1(torch.randn(3, 10, 1, 1)).shape[-1] == 32 // private  # shared up to 32x32 for 1
    x1, x2 = gen(torch.randn(3, 10))
    assert x1.shape == x2.shape == (3, 1, 32, 32) and 0 <= x1.min() and x1.max() <= 1
    assert not torch.allclose(x1, x2)  # the last layers differ


@pytest.mark.parametrize("sharing", [True, False])
def test_discriminators_share_all_but_their_first_layer(cogan, sharing):
    disc = cogan.CoupledDiscriminators(w=4, sharing=sharing, classes=10)
    first, second = parameter_ids(disc.first1, disc.trunk1), parameter_ids(disc.first2, disc.trunk2)
    assert first & second == (parameter_ids(disc.trunk1) if sharing else set())
    logits, features = disc(torch.rand(3, 1, 32, 32), 2)
    assert logits.shape == (3,) and features.shape == (3, 4 * 4 * 4 * 4)  # 4w channels at 4x4
    # the classifier through domain 2 is domain 2's first layer and the shared layers, the same Parameters
    assert parameter_ids(disc.classifier(2)) == parameter_ids(disc.first2, disc.trunk2.features, disc.digit)
    assert disc.classifier(2)(torch.rand(3, 1, 32, 32)).shape == (3, 10)


def test_zoom_is_the_identity_at_first_and_magnifies_below_one(cogan):
    zoom = cogan.Zoom()
    x = torch.zeros(2, 1, 32, 32)
    x[:, :, 8:24, 8:24] = 1  # a 16-pixel square in the middle
    assert torch.allclose(zoom(x), x, atol=1e-6)
    with torch.no_grad():
        zoom.log_scale.fill_(torch.tensor(0.5).log())
    magnified = zoom(x)  # half the frame, drawn over all of it
    assert magnified[:, :, 1:31, 1:31].min() > 0.99 and magnified.mean() > 0.9
    magnified.sum().backward()
    assert zoom.log_scale.grad != 0 and zoom.shift.grad.shape == (2,)
    assert zoom.figures() == pytest.approx({"scale": 0.5, "shift": [0.0, 0.0]})


def test_zoom_frames_domain_two_alone_and_learns_faster(cogan):
    gen = cogan.CoupledGenerators(z_dim=10, w=4, zoom=True)
    disc = cogan.CoupledDiscriminators(w=4, classes=10, zoom=True)
    assert isinstance(gen.last2[-1], cogan.Zoom) and isinstance(disc.first2[0], cogan.Zoom)
    zooms = [m for m in (*gen.modules(), *disc.modules()) if isinstance(m, cogan.Zoom)]
    assert len(zooms) == 2  # domain 1 keeps its framing: it is the one the class head learns
    assert parameter_ids(disc.first2[0]) <= parameter_ids(disc.classifier(2))  # USPS is read through it
    opt = cogan.optimiser(gen, 1e-3)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-3 * cogan.ZOOM_LR_FACTOR]
    assert {id(p) for p in opt.param_groups[1]["params"]} == parameter_ids(gen.last2[-1])
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(gen.parameters()))
    assert len(cogan.optimiser(cogan.CoupledGenerators(z_dim=10, w=4), 1e-3).param_groups) == 1


def test_coupled_losses_by_hand(cogan):
    real = [torch.tensor([2.0, 0.0]), torch.tensor([1.0])]
    fake = [torch.tensor([-1.0, 1.0]), torch.tensor([0.0])]

    def smoothed(v):  # cross-entropy of logit v against target 0.9
        return 0.9 * softplus(-v) + 0.1 * softplus(v)

    # per domain: the real term's batch mean plus the fake term's, -log(1 - sigma(v)) = softplus(v)
    expected_d = (smoothed(2) + smoothed(0)) / 2 + (softplus(-1) + softplus(1)) / 2 + smoothed(1) + softplus(0)
    assert cogan.discriminator_loss(real, fake).item() == pytest.approx(expected_d)
    # -log sigma(v) = softplus(-v), each domain's batch mean, summed
    expected_g = (softplus(1) + softplus(-1)) / 2 + softplus(0)
    assert cogan.generator_loss(fake).item() == pytest.approx(expected_g)


def test_feature_alignment_by_hand(cogan):
    a = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [3.0, 1.0]])
    # per pair the squared distance summed over features: 4 and 10, averaged over the batch
    assert cogan.feature_alignment(a, b).item() == pytest.approx(7.0)
    assert cogan.feature_alignment(a, a).item() == 0


def test_pair_metrics_on_known_images():
    a = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    b = torch.tensor([0.9, 0.0, 0.6, 0.2]).view(1, 1, 2, 2)  # lit at 0 and 2 once binarised at 0.5
    assert fm.pair_metrics(a, a) == {"pair_agreement": 1.0, "pair_iou": 1.0}
    # agree on pixels 0 and 3; lit in both: pixel 0; lit in either: 0, 1, 2
    assert fm.pair_metrics(a, b) == pytest.approx({"pair_agreement": 0.5, "pair_iou": 1 / 3})
    blank = torch.zeros(2, 1, 4, 4)
    assert fm.pair_metrics(blank, blank) == {"pair_agreement": 1.0, "pair_iou": 0.0}  # no digit to agree on


def test_mismatched_real_edges_give_the_floor(mnist):
    x = mnist.test_x
    floor = fm.pair_metrics(fm.edges(x), fm.edges(x.roll(1, 0)))
    assert floor["pair_agreement"] == pytest.approx(0.854, abs=0.002)
    assert floor["pair_iou"] == pytest.approx(0.150, abs=0.002)
    assert fm.pair_metrics(fm.edges(x), fm.edges(x)) == {"pair_agreement": 1.0, "pair_iou": 1.0}


@pytest.mark.parametrize(
    "task, no_sharing, folder",
    [
        ("edges", False, ""),
        ("edges", True, "no_sharing"),
        ("negative", False, "negative"),
        ("negative", True, "negative_no_sharing"),
    ],
)
def test_each_variant_has_its_own_output_folder(cogan, task, no_sharing, folder):
    assert cogan.variant_folder(Namespace(task=task, no_sharing=no_sharing)) == folder


@pytest.mark.parametrize("flags", [[], ["--no-sharing"], ["--task", "negative"]])
def test_smoke_run_writes_its_files(tmp_path, flags):
    result = run_script("Coupled_GAN/train.py", *SMALL, *flags, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("real.png", "pairs.png", "process.gif", "loss.png", "checkpoint.pt"):
        assert (tmp_path / name).is_file(), name
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["model"] == "Coupled_GAN" and m["steps"] == 8  # an epoch: the 128 images of domain 2's half
    assert m["sharing"] == ("--no-sharing" not in flags)
    assert QUALITY <= m.keys()
    for key in ("pair_agreement", "pair_iou", "pair_agreement_floor", "pair_iou_floor"):
        assert 0 <= m[key] <= 1, key


def test_usps_smoke_run_measures_the_adapted_head(tmp_path):
    flags = ["--private-g-layers", "2", "--feature-weight", "0.01", "--class-weight", "10"]
    result = run_script("Coupled_GAN/train.py", *SMALL, "--task", "usps", *flags, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["task"] == "usps" and m["steps"] == 16
    for key in ("adapted_acc", "mnist_test_acc", "source_classifier_acc", "pair_digit_agreement"):
        assert 0 <= m[key] <= 1, key
    assert "pair_agreement" not in m  # pixels of two framings do not compare; their digits do
    assert m["source_acc"] == pytest.approx(0.8032, abs=1e-4)  # the evaluator on untranslated USPS
    assert {"class", "align"} <= torch.load(tmp_path / "checkpoint.pt", weights_only=True)["losses"].keys()


def test_usps_without_sharing_is_one_line():
    result = run_script("Coupled_GAN/train.py", "--task", "usps", "--no-sharing", "--max-steps", "1")
    assert_one_line_error(result, 2, "--no-sharing")
