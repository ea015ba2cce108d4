import numpy as np
import pytest
import scipy.linalg
import torch

import funmnist as fm
from funmnist import metrics


def one_hot(labels, classes=10):
    return np.eye(classes)[labels]


def test_frechet_distance_by_hand():
    # Four corners of a square: mean (1, 1), covariance 4/3 I. Scaled by 2 and moved by 3:
    # mean (5, 5), covariance 16/3 I. FD = |(4, 4)|^2 + 2 (4/3 + 16/3 - 2 * 8/3) = 32 + 8/3.
    a = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    assert metrics.frechet_distance(a, 2 * a + 3) == pytest.approx(32 + 8 / 3)
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-12)


def test_frechet_distance_matches_the_matrix_square_root_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 6))
    b = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 0.5
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s_a + s_b - 2 * scipy.linalg.sqrtm(s_a @ s_b).real)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_inception_score_confidence_and_balance_by_hand():
    balanced = one_hot(np.arange(100) % 10)
    assert metrics.inception_score(balanced) == pytest.approx(10, rel=1e-6)
    assert metrics.class_balance(balanced) == pytest.approx(1)
    single = one_hot(np.full(100, 3))
    assert metrics.inception_score(single) == pytest.approx(1)
    assert metrics.class_balance(single) == 0
    assert metrics.inception_score(np.full((100, 10), 0.1)) == pytest.approx(1)  # unsure of every image
    probs = np.array([[0.95, 0.05] + [0] * 8, [0.5, 0.5] + [0] * 8])
    assert metrics.confident(probs) == 0.5
    assert metrics.cond_acc(probs, np.array([0, 1])) == 0.5


def test_knn_accuracy_leaves_each_point_out():
    points = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0.5, 0.5], [10, 10], [10, 11], [11, 10]], dtype=float)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # The 1 at (0.5, 0.5) sits among 0s: its neighbours outvote it; all others are right.
    assert fm.knn_accuracy(points, labels, k=3) == pytest.approx(7 / 8)


def test_accuracy_uses_eval_mode_and_restores_training():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.99), torch.nn.Linear(4, 2))
    with torch.no_grad():
        net[2].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
        net[2].bias.zero_()
    x = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [2.0, 1.0, 0, 0]]).view(3, 1, 2, 2)
    assert fm.accuracy(net, x, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    assert net.training


@pytest.fixture(scope="module")
def test_outputs(mnist):
    return metrics.evaluator_outputs(mnist.test_x)


def test_evaluator_on_the_real_test_set(mnist, test_outputs):
    _, probs = test_outputs
    assert metrics.cond_acc(probs, mnist.test_y.numpy()) >= 0.993
    assert metrics.inception_score(probs) >= 9.5
    assert metrics.confident(probs) >= 0.95
    assert metrics.class_balance(probs) > 0.99


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise(mnist, test_outputs):
    features, _ = test_outputs
    assert metrics.frechet_distance(features, features) < 1e-6
    torch.manual_seed(0)
    clean = mnist.test_x[:3000]
    distances = [
        metrics.frechet_distance(
            metrics.evaluator_outputs((clean + s * torch.randn_like(clean)).clamp(0, 1))[0], features
        )
        for s in (0.0, 0.1, 0.3, 0.6)
    ]
    # A clean subset only shows the sampling floor; noise moves the features far past it.
    assert 10 * distances[0] < distances[1] < distances[2] < distances[3], distances


def test_one_digit_gives_low_score_and_balance(mnist):
    ones = mnist.test_x[mnist.test_y == 1]
    _, probs = metrics.evaluator_outputs(ones)
    assert metrics.inception_score(probs) < 1.2
    assert metrics.class_balance(probs) < 0.1


def test_generator_metrics_of_real_images_equal_the_floor(mnist):
    drawn = 0

    def sample(k):  # a "generator" that returns the training images in order
        nonlocal drawn
        drawn += k
        return mnist.train_x[drawn - k : drawn]

    figures = metrics.generator_metrics(sample, mnist, n=2000)
    assert drawn == 2000
    assert figures["fid"] == pytest.approx(figures["fid_real"], abs=1e-9)
    assert figures["is"] >= 9.0 and figures["confident"] >= 0.9 and figures["class_balance"] > 0.99


def test_real_images_are_evaluated_once_per_split(mnist, monkeypatch):
    evaluated = []
    measure = metrics.evaluator_outputs

    def counting(images, net=None, batch_size=1000):
        evaluated.append(len(images))
        return measure(images, net, batch_size)

    monkeypatch.setattr(metrics, "evaluator_outputs", counting)
    small = fm.Split(mnist.train_x[:600], mnist.train_y[:600], mnist.test_x[:300], mnist.test_y[:300])
    first = metrics.generator_metrics(lambda k: small.train_x[:k], small, n=200)
    second = metrics.generator_metrics(lambda k: small.train_x[:k], small, n=200)
    # the samples each time (200), the test set (300) and the training references (200) once only
    assert evaluated == [200, 300, 200, 200] and first == second
    copy = fm.Split(small.train_x, small.train_y, small.test_x, small.test_y)
    metrics.generator_metrics(lambda k: copy.train_x[:k], copy, n=200)
    assert evaluated[4:] == [200, 300, 200]  # another Split: its own references
