"""Autoencoders: networks' shapes, losses against hand-computed values, the AAE's priors, smoke runs."""

import json
import math

import pytest
import torch
from conftest import QUALITY, SMALL, load_script, run_script

AE = load_script("AE/train.py")
VAE = load_script("VAE/train.py")
AAE = load_script("Adversarial_Autoencoder/train.py")
VAE_GAN = load_script("VAE-GAN/train.py")


@pytest.mark.parametrize("variant", list(AE.VARIANTS))
def test_ae_shapes_and_sigmoid_codes(variant):
    code_dim, sigmoid, _ = AE.VARIANTS[variant]
    enc, dec = AE.Encoder(code_dim, sigmoid), AE.Decoder(code_dim)
    z = enc(torch.randn(5, 1, 32, 32) * 10)
    assert z.shape == (5, code_dim)
    assert ((z > 0) & (z < 1)).all() if sigmoid else (z.min() < 0)
    x = dec(z)
    assert x.shape == (5, 1, 32, 32) and ((x >= 0) & (x <= 1)).all()


def test_vae_kl_against_hand_computed_value():
    # q = N((1, 0), diag(1, 4)): KL = 1/2 [(1 + 1 - 1 - 0) + (4 + 0 - 1 - ln 4)] = 2 - ln 2
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4)]])
    assert VAE.kl_divergence(mu, logvar).item() == pytest.approx(2 - math.log(2))
    assert VAE_GAN.kl_divergence(mu, logvar).item() == pytest.approx(2 - math.log(2))
    assert VAE.kl_divergence(torch.zeros(3, 2), torch.zeros(3, 2)).tolist() == [0, 0, 0]


def test_vae_loss_is_a_per_image_sum():
    # logits 0 predict p = 1/2 for each of 784 pixels: -log 1/2 per pixel whatever x, plus the KL
    x = torch.rand(4, 784)
    mu, logvar = torch.zeros(4, 2), torch.zeros(4, 2)
    mu[0, 0] = 2.0  # KL of image 0 = 1/2 * 2^2 = 2
    loss = VAE.negative_elbo(x, torch.zeros(4, 784), mu, logvar)
    expected = [784 * math.log(2) + 2] + [784 * math.log(2)] * 3
    assert loss.tolist() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("prior", ["triangle", "donut", "gaussian"])
def test_aae_prior_samples_land_in_support(prior):
    z = AAE.sample_prior(prior, 20_000, generator=torch.Generator().manual_seed(0))
    share = AAE.in_support(prior, z).float().mean().item()
    assert share == 1.0 if prior != "gaussian" else share == pytest.approx(0.99, abs=0.003)
    assert z.mean(0).abs().max() < 0.03  # every support is centred on 0


def test_aae_priors_are_uniform_and_their_supports_exclude_outside_points():
    g = torch.Generator().manual_seed(0)
    triangle = AAE.sample_prior("triangle", 20_000, generator=g)
    # the triangle halved about its centroid holds a quarter of its area
    assert AAE.in_support("triangle", 2 * triangle).float().mean().item() == pytest.approx(0.25, abs=0.01)
    donut = AAE.sample_prior("donut", 20_000, generator=g)
    # uniform over 1 <= r <= 2: P(r^2 <= 2.5) = (2.5 - 1) / (4 - 1)
    assert (donut.norm(dim=1) ** 2 <= 2.5).float().mean().item() == pytest.approx(0.5, abs=0.01)
    outside = torch.tensor([[0.0, 2.1], [1.8, 0.0], [0.0, 0.0], [0.0, 2.5]])
    assert AAE.in_support("triangle", outside).tolist() == [False, False, True, False]
    assert AAE.in_support("donut", outside).tolist() == [False, True, False, False]


def test_vae_gan_discriminator_features_and_logits():
    features, logits = VAE_GAN.Discriminator()(torch.rand(6, 1, 32, 32))
    assert features.shape == (6, 128 * 4 * 4) and logits.shape == (6,)
    mu, logvar = VAE_GAN.Encoder(32)(torch.rand(6, 1, 32, 32))
    assert mu.shape == logvar.shape == (6, 32)
    assert VAE_GAN.Decoder(32)(mu).shape == (6, 1, 32, 32)


def test_vae_gan_losses_against_hand_computed_values():
    # one real image at logit ln 9 (D = 0.9) and two fakes at logit 0 (D = 1/2), the real target 0.9:
    # -0.9 ln 0.9 - 0.1 ln 0.1 (the target's entropy, the real term's minimum) + 2 ln 2
    real, fake = torch.tensor([math.log(9)], requires_grad=True), torch.zeros(2)
    d_loss = VAE_GAN.discriminator_loss(real, fake, 0.9)
    assert d_loss.item() == pytest.approx(-0.9 * math.log(0.9) - 0.1 * math.log(0.1) + 2 * math.log(2))
    d_loss.backward()
    assert real.grad.item() == pytest.approx(0, abs=1e-6)  # smoothed: a real at D = 0.9 is pushed no further
    assert VAE_GAN.discriminator_loss(real, fake, 1.0).item() == pytest.approx(-math.log(0.9) + 2 * math.log(2))
    # the decoder's -log D over both fakes, per real image: 2 ln 2 for a batch of one
    assert VAE_GAN.generator_loss(fake, 1).item() == pytest.approx(2 * math.log(2))


def metrics_of(out):
    return json.loads((out / "metrics.json").read_text())


def test_ae_smoke_writes_its_variant_folder(tmp_path):
    result = run_script("AE/train.py", *SMALL, "--variant", "2_dim", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("orig.png", "process.gif", "loss.png", "manifold.png", "random.png", "manifold_scatter.png"):
        assert (tmp_path / name).is_file(), name
    m = metrics_of(tmp_path)
    assert m["model"] == "AE" and m["variant"] == "2_dim" and m["code_dim"] == 2 and 0 < m["recon_mse"] < 1


def test_vae_smoke(tmp_path):
    result = run_script("VAE/train.py", *SMALL, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("orig.png", "process.gif", "loss.png", "sample.png", "manifold.png"):
        assert (tmp_path / name).is_file(), name
    m = metrics_of(tmp_path)
    assert m["test_elbo"] < 0 and 0 < m["recon_mse"] < 1
    assert QUALITY <= m.keys()


def test_aae_smoke(tmp_path):
    result = run_script("Adversarial_Autoencoder/train.py", *SMALL, "--prior", "donut", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("orig.png", "process.gif", "loss.png", "manifold_scatter.png"):
        assert (tmp_path / name).is_file(), name
    m = metrics_of(tmp_path)
    assert m["prior"] == "donut" and 0 <= m["in_support"] <= 1
    assert m["prior_std"] == pytest.approx([math.sqrt(1.25)] * 2, abs=0.02)  # E r^2 / 2 = (1 + 4) / 4


@pytest.mark.parametrize("flags", [[], ["--no-gan"]])
def test_vae_gan_smoke(tmp_path, flags):
    result = run_script("VAE-GAN/train.py", *SMALL, *flags, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("orig.png", "recon.png", "sample.png", "process.gif", "loss.png"):
        assert (tmp_path / name).is_file(), name
    m = metrics_of(tmp_path)
    assert m["gan"] is not bool(flags) and {"recon_mse", "fid", "is", "confident"} <= m.keys()
    objects = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["objects"]
    trained = "egd"[: 3 - len(flags)]  # the encoder's, the decoder's and, with the GAN, the discriminator's
    assert [name for name in objects if name.startswith("sched_")] == [f"sched_{net}" for net in trained]
    assert all(objects[f"opt_{net}"]["param_groups"][0]["lr"] == 0 for net in trained)  # the rate ends at zero


def test_variants_and_seeds_pick_their_own_output_folder():
    from funmnist.cli import REPO_ROOT, parser

    p = parser(str(REPO_ROOT / "AE" / "train.py"), "t", epochs=1, subfolder=lambda a: a.variant)
    p.add_argument("--variant", default="100_dim")
    assert p.parse_args([]).out == REPO_ROOT / "AE" / "samples" / "100_dim"
    assert p.parse_args(["--variant", "2_dim"]).out == REPO_ROOT / "AE" / "samples" / "2_dim"
    assert str(p.parse_args(["--out", "elsewhere"]).out) == "elsewhere"
    # another seed goes beside the committed seed 0's run, not over it
    assert p.parse_args(["--variant", "2_dim", "--seed", "2"]).out == REPO_ROOT / "AE" / "samples" / "2_dim" / "seed2"
    assert str(p.parse_args(["--seed", "2", "--out", "elsewhere"]).out) == "elsewhere"
