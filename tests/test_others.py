"""Semi-supervised GAN, transfer learning and spatial transformers: their pieces and smoke runs."""

import json

import torch
from conftest import load_script, run_script

STN = load_script("Spatial_Transformer/train.py")
SMALL = ["--limit", "256", "--batch-size", "32", "--epochs", "2", "--device", "cpu"]  # 16 steps


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
