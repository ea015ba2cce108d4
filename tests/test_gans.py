"""Unconditional GANs: each loss against hand-computed values, so that a GAN under another name fails."""

import json
import math

import pytest
import torch
from conftest import QUALITY, SMALL, load_script, run_script, softplus

GAN = load_script("GAN/train.py")
WGAN = load_script("WGAN/train.py")
WGAN_GP = load_script("WGAN-GP/train.py")
LSGAN = load_script("LSGAN/train.py")
EBGAN = load_script("EBGAN/train.py")
BEGAN = load_script("BEGAN/train.py")


@pytest.mark.parametrize("module", [GAN, WGAN, WGAN_GP, LSGAN, EBGAN])
def test_generator_makes_images_in_the_unit_range(module):
    images = module.Generator()(torch.randn(5, 100))
    assert images.shape == (5, 1, 32, 32) and images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("module, name", [(GAN, "Discriminator"), (WGAN, "Critic"), (WGAN_GP, "Critic")])
def test_discriminators_give_one_score_per_image(module, name):
    assert getattr(module, name)()(torch.rand(5, 1, 32, 32)).shape == (5,)


def test_gan_losses_are_non_saturating_cross_entropy_with_smoothed_real_targets():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])

    # D, real target 0.9: mean(0.9 softplus(-real) + 0.1 softplus(real)) + mean(softplus(fake))
    expected_real = (softplus(0.0) + 0.9 * softplus(-2.0) + 0.1 * softplus(2.0)) / 2
    expected_d = expected_real + (softplus(0.0) + softplus(-1.0)) / 2
    assert GAN.discriminator_loss(real, fake).item() == pytest.approx(expected_d)
    # G: mean(-log sigma(fake)) = mean(softplus(-fake))
    assert GAN.generator_loss(fake).item() == pytest.approx((softplus(0.0) + softplus(1.0)) / 2)


def test_wgan_critic_loss_is_the_score_gap():
    assert WGAN.critic_loss(torch.tensor([3.0, 1.0]), torch.tensor([-1.0, 0.0])).item() == pytest.approx(-2.5)
    assert WGAN.generator_loss(torch.tensor([-1.0, 0.0])).item() == pytest.approx(0.5)


def test_wgan_critic_has_no_sigmoid():
    scores = WGAN.Critic()(torch.rand(64, 1, 32, 32) * 50)
    assert (scores < 0).any() or (scores > 1).any()


def test_wgan_critic_mean_score_tells_batches_apart():
    # The critic's loss sees only each batch's mean score. Were the score a linear function of a
    # BatchNorm output, that mean would be a constant whenever the score layer weighs each position
    # alike: BatchNorm (train mode, one batch) removes each channel's batch mean.
    torch.manual_seed(0)
    critic = WGAN.Critic()
    score_layer = critic.net[-1]
    with torch.no_grad():
        score_layer.weight.fill_(0.01)
    digits_like, noise = (torch.rand(64, 1, 32, 32) > 0.8).float(), torch.rand(64, 1, 32, 32)
    assert critic(digits_like).mean().item() != pytest.approx(critic(noise).mean().item(), abs=1e-4)


def test_gradient_penalty_of_a_linear_critic():
    # f(x) = w.x has gradient w everywhere: the penalty is lambda (|w| - 1)^2 whatever the interpolate
    w = torch.randn(1, 1, 32, 32)

    def critic(x):
        return (x * w).sum((1, 2, 3))

    real, fake = torch.rand(8, 1, 32, 32), torch.rand(8, 1, 32, 32)
    expected = 10 * (w.norm().item() - 1) ** 2
    assert WGAN_GP.gradient_penalty(critic, real, fake, 10.0).item() == pytest.approx(expected, rel=1e-5)
    unit = w / w.norm()
    penalty = WGAN_GP.gradient_penalty(lambda x: (x * unit).sum((1, 2, 3)), real, fake)
    assert penalty.item() == pytest.approx(0, abs=1e-9)


def test_gradient_penalty_is_per_sample_and_reaches_the_critic():
    # f(x) = |x|^2 / 2 has gradient x^: the penalty depends on the interpolates and trains the critic
    scale = torch.nn.Parameter(torch.tensor(1.0))

    def critic(x):
        return scale * x.pow(2).sum((1, 2, 3)) / 2

    real, fake = torch.zeros(4, 1, 2, 2), torch.ones(4, 1, 2, 2)
    torch.manual_seed(1)
    eps = torch.rand(4, 1, 1, 1)
    expected = 10 * ((2 * (1 - eps.flatten())) - 1).pow(2).mean()  # |grad| = |x^| = 2 (1 - eps)
    torch.manual_seed(1)
    penalty = WGAN_GP.gradient_penalty(critic, real, fake, 10.0)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)
    penalty.backward()
    assert scale.grad is not None and scale.grad.abs() > 0


def test_wgan_gp_critic_has_no_batchnorm():
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in WGAN_GP.Critic().modules())


@pytest.mark.parametrize("n_critic", [1, 4])
def test_wgan_gp_generator_steps_once_per_n_critic_steps(tmp_path, n_critic):
    result = run_script("WGAN-GP/train.py", *SMALL, "--n-critic", n_critic, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    losses = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["losses"]
    assert len(losses["wasserstein"][0]) == 16 and len(losses["g"][0]) == 16 // n_critic


def test_lsgan_losses_on_known_scores():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    # D: 1/2 mean((real - 1)^2) + 1/2 mean((fake - 0)^2) = 1/2 * 1/2 + 1/2 * 2
    assert LSGAN.discriminator_loss(real, fake).item() == pytest.approx(0.25 + 1.0)
    # G: 1/2 mean((fake - 1)^2) = 1/2 * 1
    assert LSGAN.generator_loss(fake).item() == pytest.approx(0.5)
    assert LSGAN.discriminator_loss(torch.ones(3), torch.zeros(3)).item() == 0


def test_pull_away_term():
    assert EBGAN.pull_away(torch.eye(4) * 3).item() == pytest.approx(0.0)
    assert EBGAN.pull_away(torch.ones(5, 7)).item() == pytest.approx(1.0)
    # two codes at 60 degrees: cos^2 = 1/4
    codes = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    assert EBGAN.pull_away(codes).item() == pytest.approx(0.25)


def test_ebgan_hinge_and_energy():
    real, fake = torch.tensor([0.1, 0.3]), torch.tensor([0.05, 0.5])
    # mean(real) + mean(max(0, 0.2 - fake)) = 0.2 + (0.15 + 0) / 2
    assert EBGAN.discriminator_loss(real, fake, 0.2).item() == pytest.approx(0.275)
    disc = EBGAN.Discriminator().eval()
    x = torch.rand(3, 1, 32, 32)
    energy, codes = disc(x)
    assert energy.shape == (3,) and codes.shape == (3, 256 * 2 * 2)
    assert energy[0].item() == pytest.approx((disc.decoder(disc.encoder(x[:1])) - x[:1]).pow(2).mean().item())


def test_began_k_update_and_clamp():
    eq = BEGAN.Equilibrium(gamma=0.5, lambda_k=0.001)
    m = eq.update(0.2, 0.05)  # balance = 0.5 * 0.2 - 0.05 = 0.05
    assert eq.k.item() == pytest.approx(0.00005) and m == pytest.approx(0.25)
    eq.update(0.2, 0.5)  # balance -0.4 would take k below 0
    assert eq.k.item() == 0
    fast = BEGAN.Equilibrium(gamma=0.5, lambda_k=10.0)
    fast.update(1.0, 0.0)
    assert fast.k.item() == 1
    assert "k" in fast.state_dict()


def test_began_backward_gives_each_player_its_own_gradient():
    # one pass through the fakes serves both: D descends L(x) - k L(G(z)), G descends L(G(z))
    torch.manual_seed(0)
    disc, gen = torch.nn.Linear(3, 1), torch.nn.Linear(2, 3)
    x, z, k = torch.randn(4, 3), torch.randn(4, 2), torch.tensor(0.3)

    def losses():
        return disc(x).abs().mean(), disc(gen(z)).abs().mean()

    real_loss, fake_loss = losses()
    want_d = torch.autograd.grad(real_loss - k * fake_loss, list(disc.parameters()), retain_graph=True)
    want_g = torch.autograd.grad(fake_loss, list(gen.parameters()))
    BEGAN.backward(*losses(), k, disc)
    for p, want in zip([*disc.parameters(), *gen.parameters()], [*want_d, *want_g], strict=True):
        assert torch.allclose(p.grad, want)


def test_began_discriminator_is_an_l1_autoencoder():
    disc = BEGAN.Discriminator()
    x = torch.rand(3, 1, 32, 32)
    assert disc(x).tolist() == pytest.approx((disc.net(x) - x).abs().mean((1, 2, 3)).tolist())


def test_began_networks_keep_batchnorm_and_have_no_squashed_outputs():
    # a sigmoid under L1's constant-size gradient saturates: the generator's went black and stayed there;
    # without BatchNorm the generator collapsed to thin 1s, the digit the autoencoder's L1 error is least on
    for net in (BEGAN.Discriminator(), BEGAN.Generator()):
        kinds = {type(m) for m in net.modules()}
        assert {BEGAN.ELU, torch.nn.BatchNorm2d} <= kinds and torch.nn.Sigmoid not in kinds
    assert BEGAN.Generator()(torch.randn(5, 100)).shape == (5, 1, 32, 32)


def test_began_elu_is_torchs_in_value_and_gradient():
    x = torch.linspace(-30, 30, 601, dtype=torch.float64, requires_grad=True)
    ours = BEGAN.ELU()(x)
    (grad,) = torch.autograd.grad(ours.sum(), x)
    (want,) = torch.autograd.grad(torch.nn.functional.elu(x).sum(), x)
    assert torch.allclose(ours, torch.nn.functional.elu(x)) and torch.allclose(grad, want)


def test_began_decoders_upsample_as_the_paper_does():
    # nearest-neighbour upsampling and 3x3 convs, not stride-2 transposed convs: the generator's drew a speckled
    # checkerboard that the autoencoder's own transposed convs could reconstruct
    for net in (BEGAN.Discriminator(), BEGAN.Generator()):
        assert not any(isinstance(m, torch.nn.ConvTranspose2d) and m.stride != (1, 1) for m in net.modules())
        assert sum(isinstance(m, torch.nn.Upsample) for m in net.modules()) == 4


def test_began_autoencoder_error_depends_on_the_rest_of_the_batch():
    # BatchNorm normalises by the batch's statistics, so the same image is judged differently beside copies
    # of itself than beside other images: what lets the autoencoder tell a collapsed batch
    disc = BEGAN.Discriminator()
    x = torch.rand(8, 1, 32, 32)
    assert abs(disc(x)[0].item() - disc(x[:1].expand_as(x))[0].item()) > 1e-4


@pytest.mark.parametrize("folder", ["GAN", "WGAN", "WGAN-GP", "LSGAN", "EBGAN", "BEGAN"])
def test_gan_smoke(tmp_path, folder):
    result = run_script(f"{folder}/train.py", *SMALL, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("real.png", "sample.png", "process.gif", "loss.png", "metrics.json"):
        assert (tmp_path / name).is_file(), name
    assert len(list(tmp_path.glob("step_*.png"))) == 16
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["model"] == folder and QUALITY <= m.keys() and 1 <= m["is"] <= 10
    # the moving average is measured, and the raw generator beside it
    assert QUALITY <= m["raw_generator"].keys() and m["raw_generator"]["fid"] != m["fid"]
    if folder == "BEGAN":
        assert (tmp_path / "convergence.png").is_file() and 0 <= m["k"] <= 1
        by_digit, one_digit = m["real_loss_by_digit"], m["one_digit_batch_loss"]
        losses = by_digit + one_digit + [m["fake_loss"], m["mixed_batch_loss"], m["copies_batch_loss"]]
        assert len(by_digit) == len(one_digit) == 10 and all(v > 0 for v in losses)
        assert 0 <= m["fake_pixels_clamped"] <= 1
        # the mixed batches' mean is a mean of the per-digit figures
        assert min(by_digit) <= m["mixed_batch_loss"] <= max(by_digit)
