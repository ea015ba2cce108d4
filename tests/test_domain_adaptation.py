"""USPS, the translation figures, and the unpaired translators CycleGAN and UNIT."""

import bz2
import json
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets.utils as tvutils
from conftest import DATA_ROOT, assert_one_line_error, load_script, run_script

import funmnist as fm
from funmnist import metrics

USPS = DATA_ROOT / "USPS"
SMOKE = ["--limit", "128", "--batch-size", "16", "--epochs", "2", "--device", "cpu"]  # 16 steps


@pytest.fixture(scope="module")
def usps() -> fm.Split:
    return fm.load_usps(DATA_ROOT, torch.device("cpu"))


def root_with_usps(tmp_path, train_lines=None):
    """A data root: the real MNIST, and USPS whose training file holds `train_lines` (default: the real ones)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "MNIST").symlink_to((DATA_ROOT / "MNIST").resolve())
    (tmp_path / "USPS").mkdir()
    (tmp_path / "USPS" / "usps.t.bz2").symlink_to((USPS / "usps.t.bz2").resolve())
    if train_lines is None:
        (tmp_path / "USPS" / "usps.bz2").symlink_to((USPS / "usps.bz2").resolve())
    else:
        (tmp_path / "USPS" / "usps.bz2").write_bytes(bz2.compress(b"".join(train_lines)))
    return tmp_path


def usps_lines() -> list[bytes]:
    return bz2.open(USPS / "usps.bz2").readlines()


def test_usps_counts_shapes_range_and_labels(usps):
    assert usps.train_x.shape == (7291, 1, 32, 32) and usps.test_x.shape == (2007, 1, 32, 32)
    assert usps.train_x.dtype == torch.float32 and usps.train_y.dtype == torch.int64
    assert usps.train_x.min() == 0 and usps.train_x.max() == 1
    # the test set's digit counts (../shared/data/README.md)
    assert torch.bincount(usps.test_y).tolist() == [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]
    # light digits on a dark ground, as MNIST: the corners are dark
    assert usps.train_x[:, 0, 0, 0].mean() < 0.05 and usps.train_x.mean() > 0.1


def test_usps_framings(usps):
    boxed = fm.load_usps(DATA_ROOT, torch.device("cpu"), framing="mnist")
    assert boxed.test_x.shape == (2007, 1, 32, 32) and torch.equal(boxed.test_y, usps.test_y)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[6:26, 6:26] = False
    assert boxed.train_x[:, 0, border].abs().max() == 0  # a 20-pixel box inside the frame, as MNIST's
    assert usps.train_x[:, 0, border].max() > 0.5  # `full` fills the frame
    # the same digit at two sizes: its 20-pixel box resized to 32 is close to the full framing
    resized = torch.nn.functional.interpolate(boxed.test_x[:, :, 6:26, 6:26], size=32, mode="bilinear")
    assert (resized - usps.test_x).abs().mean() < 0.05


def test_full_framing_shrunk_is_the_mnist_framing(usps):
    boxed = fm.load_usps(DATA_ROOT, torch.device("cpu"), framing="mnist")
    reframed = fm.full_to_mnist_framing(usps.test_x)
    assert reframed.shape == usps.test_x.shape and 0 <= reframed.min() and reframed.max() <= 1
    border = torch.ones(32, 32, dtype=torch.bool)
    border[6:26, 6:26] = False
    assert reframed[:, 0, border].max() == 0  # inside MNIST's 20-pixel box
    assert (reframed - boxed.test_x).abs().mean() < 0.01  # 0.0079: the same digits, resized twice
    assert (usps.test_x - boxed.test_x).abs().mean() > 0.1


def test_pair_digit_agreement_of_matched_and_mismatched_pairs(usps, mnist):
    reframed = fm.full_to_mnist_framing(usps.test_x)
    assert fm.pair_digit_agreement(reframed, reframed) == 1.0
    # USPS's test digits, in label order, beside as many MNIST test digits of each label
    by_label = reframed[usps.test_y.argsort(stable=True)]
    counts = torch.bincount(usps.test_y).tolist()
    matched = torch.cat([mnist.test_x[mnist.test_y == digit][:n] for digit, n in enumerate(counts)])
    assert fm.pair_digit_agreement(matched, by_label) > 0.97  # the evaluator reads the reframed ones at 98.2%
    assert fm.pair_digit_agreement(mnist.test_x[: len(reframed)], reframed) < 0.15  # unrelated digits: chance


def test_usps_limit(usps):
    small = fm.load_usps(DATA_ROOT, torch.device("cpu"), limit=100)
    assert torch.equal(small.train_x, usps.train_x[:100]) and len(small.test_x) == 2007


@pytest.mark.parametrize(
    "corrupt, phrase",
    [
        (lambda lines: lines[:-1], "holds 7290 digits, expected 7291"),
        (lambda lines: [b"12" + line[line.index(b" ") :] for line in lines], "label 12 is outside 1..10"),
        (lambda lines: [line[:200] + b"\n" for line in lines], "cannot be read as USPS"),
    ],
    ids=["a digit short", "bad label", "short lines"],
)
def test_corrupt_usps_stops_with_one_line(tmp_path, capsys, corrupt, phrase):
    root = root_with_usps(tmp_path, corrupt(usps_lines()))
    with pytest.raises(SystemExit) as stop:
        fm.load_usps(root, torch.device("cpu"))
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "usps.bz2" in err and phrase in err, err


def test_truncated_usps_file_stops_with_one_line(tmp_path, capsys):
    root = root_with_usps(tmp_path)
    whole = (USPS / "usps.bz2").read_bytes()
    (root / "USPS" / "usps.bz2").unlink()
    (root / "USPS" / "usps.bz2").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SystemExit) as stop:
        fm.load_usps(root, torch.device("cpu"))
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and "usps.bz2: cannot be read" in err, err


def test_missing_usps_and_failed_download_stop_with_one_line(tmp_path, capsys, monkeypatch):
    def offline(url, root, filename, md5):
        raise URLError("no network")

    monkeypatch.setattr(tvutils, "download_url", offline)
    (tmp_path / "USPS").mkdir()
    (tmp_path / "USPS" / "usps.t.bz2").symlink_to((USPS / "usps.t.bz2").resolve())
    with pytest.raises(SystemExit) as stop:
        fm.load_usps(tmp_path, torch.device("cpu"))
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert "usps.bz2 is missing and downloading USPS failed" in err and "no network" in err, err


def test_identity_translation_scores_the_untranslated_baseline(usps, mnist):
    figures = metrics.unpaired_translation_metrics(lambda x: x, lambda x: x, usps, mnist)
    assert figures["translation_acc"] == figures["source_acc"]
    assert figures["cycle_acc"] == figures["evaluator_test_acc"]
    assert 0.75 < figures["source_acc"] < 0.85  # the `full` framing's gap: 80.3% here
    boxed = fm.load_usps(DATA_ROOT, torch.device("cpu"), framing="mnist")
    assert fm.accuracy(metrics.load_evaluator(torch.device("cpu")), boxed.test_x, boxed.test_y) > 0.97


def test_adaptation_classifier_is_seeded_and_leaves_the_callers_random_stream(mnist):
    images, labels = mnist.train_x[:512], mnist.train_y[:512]
    torch.manual_seed(5)
    a = fm.train_classifier(images, labels, seed=1)
    after = torch.rand(3)
    torch.manual_seed(5)
    b = fm.train_classifier(images, labels, seed=1)
    assert torch.equal(torch.rand(3), after)
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), key
    c = fm.train_classifier(images, labels, seed=2)
    assert not torch.equal(c[0].weight, a[0].weight)


@pytest.fixture(scope="module")
def cyclegan():
    return load_script("CycleGAN/train.py")


@pytest.fixture(scope="module")
def unit():
    return load_script("UNIT/train.py")


def test_cycle_and_identity_losses_by_hand(cyclegan):
    x = torch.tensor([[[[0.0, 1.0], [0.5, 0.25]]]])
    back = torch.tensor([[[[0.5, 1.0], [0.0, 0.75]]]])
    assert cyclegan.cycle_loss(x, back).item() == pytest.approx((0.5 + 0 + 0.5 + 0.5) / 4)
    logits = torch.tensor([0.0, 2.0, 1.0])
    assert cyclegan.lsgan_loss(logits, 1).item() == pytest.approx((1 + 1 + 0) / 3)
    assert cyclegan.lsgan_loss(logits, 0).item() == pytest.approx((0 + 4 + 1) / 3)


def test_replay_buffer_returns_stored_fakes_and_keeps_at_most_its_size(cyclegan):
    torch.manual_seed(0)
    buffer = cyclegan.ReplayBuffer(50)
    first = torch.arange(32.0).view(32, 1, 1, 1)
    assert torch.equal(buffer(first), first) and len(buffer.images) == 32  # filling: each fake is shown
    second = 100 + torch.arange(32.0).view(32, 1, 1, 1)
    shown = buffer(second)
    assert len(buffer.images) == 50
    assert torch.equal(shown[:18], second[:18])  # these 18 filled the buffer
    swapped = shown[18:] != second[18:]
    assert 0 < swapped.sum() < 14  # about half of the other 14 came from the buffer
    stored = {*first.flatten().tolist(), *second[:18].flatten().tolist()}
    assert set(shown[18:][swapped].flatten().tolist()) <= stored  # what came out had been stored
    came_in = {*first.flatten().tolist(), *second.flatten().tolist()}
    for _ in range(10):
        batch = torch.rand(32, 1, 1, 1)
        came_in |= set(batch.flatten().tolist())
        assert set(buffer(batch).flatten().tolist()) <= came_in
    assert len(buffer.images) == 50 and set(buffer.images.flatten().tolist()) <= came_in


@pytest.mark.parametrize("private", [1, 2, 3])
def test_unit_shares_layers_between_domains(unit, private):
    shared_enc, shared_gen = unit.shared_layers(32, 128, private)
    enc_u, enc_m = (unit.Encoder(shared_enc, 32, 128, private) for _ in "um")
    gen_u, gen_m = (unit.Generator(shared_gen, 32, 128, private) for _ in "um")
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in enc_u.modules())
    assert convs - sum(isinstance(m, torch.nn.Conv2d) for m in shared_enc.modules()) == private
    assert enc_u.net[-1] is enc_m.net[-1] and gen_u.net[0] is gen_m.net[0]
    own = {id(p) for p in enc_u.parameters()} & {id(p) for p in enc_m.parameters()}
    assert own == {id(p) for p in shared_enc.parameters()}  # the last block and nothing else
    assert {id(p) for p in gen_u.parameters()} & {id(p) for p in gen_m.parameters()} == {
        id(p) for p in shared_gen.parameters()
    }
    x = torch.rand(2, 1, 32, 32)
    assert enc_u(x).shape == (2, 128, 1, 1) and gen_m(enc_u(x)).shape == (2, 1, 32, 32)


def test_unit_adapt_shares_the_discriminators_last_conv_and_classifies_through_it(unit):
    d_u = unit.Discriminator(32, classes=10)
    d_m = unit.Discriminator(32, top=d_u.top)
    shared = {id(p) for p in d_u.parameters()} & {id(p) for p in d_m.parameters()}
    assert shared == {id(p) for p in d_u.top.parameters()} and len(shared) == 6  # conv, logits conv, head
    x = torch.rand(3, 1, 32, 32)
    logits, features = d_m(x)
    assert logits.shape == (3, 1, 4, 4) and features.shape == (3, 128, 4, 4)
    assert d_u.classifier()(x).shape == (3, 10)
    assert torch.equal(d_m.classifier()(x), d_u.top.digit(features.flatten(1)))  # the head on D_M's features
    plain = unit.Discriminator(32)
    assert plain.top.digit is None and not {id(p) for p in plain.parameters()} & shared


def test_unit_kl_by_hand(unit):
    mu = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    # KL(N(mu, 1) || N(0, 1)) = mu^2 / 2 per unit: (0.5 + 2 + 0 + 4.5) / 4
    assert unit.kl_loss(mu).item() == pytest.approx(7 / 4)


@pytest.mark.parametrize(
    "script, flags", [("CycleGAN/train.py", []), ("UNIT/train.py", []), ("UNIT/train.py", ["--adapt"])]
)
def test_translator_smoke_run_writes_its_files(tmp_path, script, flags):
    result = run_script(script, *SMOKE, *flags, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("real.png", "translation.png", "cycle.png", "process.gif", "loss.png", "checkpoint.pt"):
        assert (tmp_path / name).is_file(), name
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["model"] == script.split("/")[0] and m["steps"] == 16 and m["usps_framing"] == "full"
    for key in ("translation_acc", "source_acc", "cycle_acc", "adapted_acc", "source_classifier_acc"):
        assert 0 <= m[key] <= 1, key
    assert m["source_acc"] == pytest.approx(0.8032, abs=1e-4)  # the evaluator on USPS's test set, untranslated
    assert m["fid"] > 0 and m["fid_real"] > 0
    adapt_keys = {"discriminator_adapted_acc", "discriminator_mnist_acc"}
    assert (adapt_keys <= m.keys()) if flags else not (adapt_keys & m.keys())


@pytest.mark.parametrize(
    "script, task",
    [
        ("CycleGAN/train.py", []),
        ("UNIT/train.py", []),
        ("UNIT/train.py", ["--adapt"]),  # reads MNIST's labels, never USPS's
        ("Coupled_GAN/train.py", ["--task", "usps"]),
    ],
)
def test_usps_training_labels_are_never_read(tmp_path, script, task):
    """Permuting USPS's training labels leaves a seeded run bit-identical."""
    lines = usps_lines()
    labels = [line.split(b" ", 1)[0] for line in lines]
    shuffled = np.random.default_rng(0).permutation(len(labels))
    permuted = [labels[j] + line[line.index(b" ") :] for j, line in zip(shuffled, lines, strict=True)]
    assert permuted != lines
    flags = [*SMOKE, "--epochs", "1", *task]
    real = run_script(script, *flags, "--data-root", root_with_usps(tmp_path / "a"), "--out", tmp_path / "a" / "out")
    fake = run_script(
        script, *flags, "--data-root", root_with_usps(tmp_path / "b", permuted), "--out", tmp_path / "b" / "out"
    )
    assert real.returncode == 0 and fake.returncode == 0, real.stderr + fake.stderr
    a = torch.load(tmp_path / "a" / "out" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "out" / "checkpoint.pt", weights_only=True)
    assert a["losses"] == b["losses"]
    for name, state in a["objects"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                assert torch.equal(value, b["objects"][name][key]), (name, key)


def test_cyclegan_resume_is_exact(tmp_path):
    whole = run_script("CycleGAN/train.py", *SMOKE, "--out", tmp_path / "whole")
    first = run_script("CycleGAN/train.py", *SMOKE, "--out", tmp_path / "split", "--max-steps", "7")
    rest = run_script("CycleGAN/train.py", *SMOKE, "--out", tmp_path / "split", "--resume")
    assert whole.returncode == first.returncode == rest.returncode == 0, whole.stderr + first.stderr + rest.stderr
    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((tmp_path / "split" / "metrics.json").read_text())
    for key in ("translation_acc", "cycle_acc", "fid", "adapted_acc"):
        assert a[key] == b[key], key


def test_bad_framing_is_one_line():
    result = run_script("CycleGAN/train.py", "--usps-framing", "tiny")
    assert_one_line_error(result, 2, "--usps-framing", "invalid choice")


def test_usps_framing_measures_both_framings(tmp_path):
    result = run_script("misc/usps_framing.py", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["full"]["source_acc"] == pytest.approx(0.8032, abs=1e-4)
    assert m["mnist"]["source_acc"] == pytest.approx(0.9831, abs=1e-4)
    assert m["mnist"]["source_classifier_acc"] > m["full"]["source_classifier_acc"]
    assert (tmp_path / "framings.png").is_file()


def test_interleaved_rows_put_each_input_row_over_its_outputs():
    x = torch.arange(16.0).view(16, 1, 1, 1)
    rows = fm.interleaved_rows(x, -x, 2 * x, per_row=8).flatten().tolist()
    first = list(range(8))
    assert rows[:24] == [*map(float, first), *(-float(v) for v in first), *(2.0 * v for v in first)]
    assert rows[24:32] == [float(v) for v in range(8, 16)] and len(rows) == 48
