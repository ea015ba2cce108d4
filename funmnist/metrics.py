"""Quality figures of CONVENTIONS.md, measured with the fixed evaluator (never the model's own nets)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.neighbors import NearestNeighbors

from .data import Split
from .evaluator import load_evaluator

SAMPLES = 10_000


@contextmanager
def evaluating(*modules: torch.nn.Module):
    """Eval mode and no gradients inside; each module's former mode is restored after."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Share of images whose argmax logit is the label, in eval mode (the mode is restored after)."""
    with evaluating(model):
        correct = sum(
            (model(images[i : i + batch_size]).argmax(1) == labels[i : i + batch_size]).sum().item()
            for i in range(0, len(images), batch_size)
        )
    return correct / len(images)


@torch.no_grad()
def recon_mse(
    reconstruct: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int = 1000
) -> float:
    """Mean squared error per pixel of reconstruct(images), pixels in [0, 1] (call it under `evaluating`)."""
    total = sum(
        (reconstruct(images[i : i + batch_size]).float() - images[i : i + batch_size]).pow(2).sum().item()
        for i in range(0, len(images), batch_size)
    )
    return total / images.numel()


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy: how well the labels separate in `points`."""
    neighbours = NearestNeighbors(n_neighbors=k).fit(points).kneighbors(return_distance=False)  # self excluded
    votes = np.apply_along_axis(np.bincount, 1, labels[neighbours], minlength=labels.max() + 1)
    return float((votes.argmax(1) == labels).mean())  # ties go to the smaller label


@torch.no_grad()
def evaluator_outputs(
    images: torch.Tensor, net: torch.nn.Module | None = None, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """The evaluator's 128-d features and class probabilities for images (N, 1, 32, 32) in [0, 1].

    `net` is the committed evaluator unless given (its own trainer passes the net it just trained).
    """
    net = net if net is not None else load_evaluator(images.device)
    features, probs = [], []
    for i in range(0, len(images), batch_size):
        f = net.trunk(images[i : i + batch_size].float())
        features.append(f.double().cpu())
        probs.append(net.head(f).double().softmax(1).cpu())
    return torch.cat(features).numpy(), torch.cat(probs).numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians fitted to two feature sets.

    tr((S_a S_b)^(1/2)) is summed from the eigenvalues of the symmetric S_a^(1/2) S_b S_a^(1/2),
    which is stabler than a general matrix square root.
    """
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    distance = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.sqrt(np.clip(cross, 0, None)).sum()
    return float(max(distance, 0.0))


def inception_score(probs: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))): 1 for one class, 10 for confident and balanced digits."""
    marginal = probs.mean(0, keepdims=True)
    kl = (probs * (np.log(probs + 1e-12) - np.log(marginal + 1e-12))).sum(1)
    return float(np.exp(kl.mean()))


def confident(probs: np.ndarray, threshold: float = 0.9) -> float:
    """Share of samples whose top class has probability >= threshold."""
    return float((probs.max(1) >= threshold).mean())


def class_balance(probs: np.ndarray) -> float:
    """Entropy of the predicted-label histogram / ln 10: 1 when every digit is equally common."""
    share = np.bincount(probs.argmax(1), minlength=10) / len(probs)
    share = share[share > 0]
    return float(-(share * np.log(share)).sum() / np.log(10)) + 0.0  # + 0.0: one class gives 0, not -0


def cond_acc(probs: np.ndarray, labels: np.ndarray) -> float:
    """Share of conditional samples that the evaluator labels as the requested class."""
    return float((probs.argmax(1) == labels).mean())


# Figures of a Split's real images by the committed evaluator, computed once: a script that measures
# its averaged generator and its raw one would otherwise evaluate the same 20,000 real images twice
# (12 s on a 2-core Xeon), and a conditional one the test set a third time for the ceiling.
_REAL_FIGURES: weakref.WeakKeyDictionary[Split, dict] = weakref.WeakKeyDictionary()


def _real_figure(data: Split, key, compute: Callable[[], object]):
    figures = _REAL_FIGURES.setdefault(data, {})
    if key not in figures:
        figures[key] = compute()
    return figures[key]


def evaluator_test_acc(data: Split) -> float:
    """The evaluator's accuracy on a real test set: on MNIST's, the ceiling of cond_acc and translation_acc;
    on another domain's, the untranslated baseline (source_acc)."""
    return _real_figure(
        data, "evaluator_test_acc", lambda: accuracy(load_evaluator(data.test_x.device), data.test_x, data.test_y)
    )


def reference_features(data: Split, n: int = SAMPLES, net: torch.nn.Module | None = None):
    """Evaluator features of the test set and of the first n training images (FID's two references).

    Kept per Split for the committed evaluator; computed afresh for a `net` given.
    """

    def compute():
        return evaluator_outputs(data.test_x, net)[0], evaluator_outputs(data.train_x[:n], net)[0]

    return compute() if net is not None else _real_figure(data, ("features", n), compute)


def sample_quality(fake: torch.Tensor, data: Split) -> tuple[dict, np.ndarray]:
    """fid, fid_real, is, confident and class_balance of generated images, and the evaluator's probabilities."""
    fake_features, fake_probs = evaluator_outputs(fake)
    test_features, real_features = reference_features(data, len(fake))
    figures = {
        "fid": frechet_distance(fake_features, test_features),
        "fid_real": frechet_distance(real_features, test_features),
        "is": inception_score(fake_probs),
        "confident": confident(fake_probs),
        "class_balance": class_balance(fake_probs),
    }
    return figures, fake_probs


@torch.no_grad()
def generator_metrics(sample: Callable[[int], torch.Tensor], data: Split, n: int = SAMPLES) -> dict:
    """fid, fid_real, is, confident and class_balance for `sample(k)`, which returns k images in [0, 1].

    n samples, and as many real training images for fid_real; fewer when --limit left fewer (smoke runs).
    """
    n = min(n, len(data.train_x))
    fake = torch.cat([sample(min(500, n - i)) for i in range(0, n, 500)])
    return sample_quality(fake, data)[0]


@torch.no_grad()
def conditional_metrics(sample: Callable[[torch.Tensor], torch.Tensor], data: Split, n: int = SAMPLES) -> dict:
    """generator_metrics' figures and cond_acc for `sample(labels)`, with n / 10 samples of each digit.

    `evaluator_test_acc`, the evaluator's accuracy on the real test set, is cond_acc's ceiling.
    """
    n = min(n, len(data.train_x)) // 10 * 10
    labels = torch.arange(10, device=data.train_x.device).repeat_interleave(n // 10)
    fake = torch.cat([sample(labels[i : i + 500]) for i in range(0, n, 500)])
    figures, probs = sample_quality(fake, data)
    return {
        **figures,
        "cond_acc": cond_acc(probs, labels.cpu().numpy()),
        "evaluator_test_acc": evaluator_test_acc(data),
    }


def code_acc(codes: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Accuracy of categorical codes read as digit labels under the one-to-one matching that maximises it.

    The matching is the Hungarian algorithm on the code-by-label counts (a code's index means nothing).
    """
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (codes, labels), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(labels))


@torch.no_grad()
def translate(net: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int = 500):
    """net(images) in batches (call it under `evaluating`)."""
    return torch.cat([net(images[i : i + batch_size]).float() for i in range(0, len(images), batch_size)])


def translation_metrics(translated: torch.Tensor, labels: torch.Tensor, mnist: Split) -> dict:
    """Figures of images translated into the MNIST domain whose digits are `labels`.

    translation_acc (the evaluator's accuracy on them), fid against the MNIST test set beside
    fid_real (as many real training digits against the same test set: the floor at that count),
    and evaluator_test_acc, the evaluator on real test digits: the ceiling.
    """
    features, probs = evaluator_outputs(translated)
    test_features, real_features = reference_features(mnist, len(translated))
    return {
        "translation_acc": cond_acc(probs, labels.cpu().numpy()),
        "fid": frechet_distance(features, test_features),
        "fid_real": frechet_distance(real_features, test_features),
        "evaluator_test_acc": evaluator_test_acc(mnist),
    }


def unpaired_translation_metrics(
    to_mnist: Callable[[torch.Tensor], torch.Tensor],
    to_other: Callable[[torch.Tensor], torch.Tensor],
    other: Split,
    mnist: Split,
) -> dict:
    """An unpaired translator's figures (CONVENTIONS.md): `to_mnist` maps the other domain to MNIST, `to_other` back.

    translation_acc and fid of to_mnist(other test set); source_acc, the evaluator on the untranslated
    other test set (the baseline); cycle_acc, the evaluator on to_mnist(to_other(MNIST test set)).
    Call it under `evaluating`.
    """
    cycled = translate(to_mnist, translate(to_other, mnist.test_x))
    return {
        **translation_metrics(translate(to_mnist, other.test_x), other.test_y, mnist),
        "source_acc": evaluator_test_acc(other),
        "cycle_acc": accuracy(load_evaluator(mnist.test_x.device), cycled, mnist.test_y),
    }


@torch.no_grad()
def paired_metrics(output: torch.Tensor, target: torch.Tensor) -> dict:
    """l1, the mean absolute error per pixel, and psnr, the mean over images of 10 log10(1 / MSE) in dB."""
    error = (output.float() - target).flatten(1)
    mse = error.pow(2).mean(1).clamp_min(1e-10)  # a perfect image scores 100 dB, not infinity
    return {"l1": error.abs().mean().item(), "psnr": (10 * torch.log10(1 / mse)).mean().item()}


@torch.no_grad()
def pair_metrics(first: torch.Tensor, second: torch.Tensor, threshold: float = 0.5) -> dict:
    """Two image sets compared pixel by pixel, both binarised at `threshold`.

    pair_agreement: the share of all pixels where the two agree; pair_iou: pixels lit in both over
    pixels lit in either, pooled over the whole set (0 when neither has a lit pixel: blank images,
    which agree everywhere, show no digit to agree on).
    """
    a, b = first > threshold, second > threshold
    union = (a | b).sum().item()
    return {
        "pair_agreement": (a == b).float().mean().item(),
        "pair_iou": (a & b).sum().item() / union if union else 0.0,
    }


@torch.no_grad()
def pair_digit_agreement(first: torch.Tensor, second: torch.Tensor) -> float:
    """The share of pairs (first[i], second[i]) that the evaluator reads as one digit.

    Pairs of unrelated digits agree by chance, about 0.1 when the digits are balanced.
    """
    first_labels, second_labels = (evaluator_outputs(images)[1].argmax(1) for images in (first, second))
    return float((first_labels == second_labels).mean())


def digit_classifier() -> torch.nn.Module:
    """A small CNN (32x32 -> 16 -> 8, 16 and 32 channels, 128 hidden units) for the adaptation figures."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, epochs: int = 1, batch_size: int = 128, seed: int = 0
) -> torch.nn.Module:
    """`digit_classifier` trained on images and labels (Adam 1e-3, cross-entropy), returned in eval mode.

    Its own seed, inside a forked random state: the caller's random streams are left as they were,
    and the same inputs give the same classifier in every script.
    """
    device = images.device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.enable_grad():  # callers measure under no_grad
        torch.manual_seed(seed)
        net = digit_classifier().to(device, memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(epochs):
            order = torch.randperm(len(images), device=device)
            for i in range(0, len(images) - batch_size + 1, batch_size):
                picked = order[i : i + batch_size]
                loss = torch.nn.functional.cross_entropy(net(images[picked]), labels[picked])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return net.eval()


def adaptation_metrics(adapted: torch.Tensor, source: Split, target: Split, seed: int = 0) -> dict:
    """adapted_acc: a `digit_classifier` trained on `adapted` (the source training images carried into
    the target domain) with the source labels, read on the target test set; source_classifier_acc:
    the same classifier trained on the untranslated source images, read there too. No target label
    is used but the test set's, to score.
    """
    trained_on = {"adapted_acc": adapted, "source_classifier_acc": source.train_x}
    return {
        key: accuracy(train_classifier(images, source.train_y, seed=seed), target.test_x, target.test_y)
        for key, images in trained_on.items()
    }
