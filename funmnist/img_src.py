"""Draw img_src/: the gallery, the README's first picture, and a structure figure per model.

    python -m funmnist.img_src          # redraw every figure in img_src/ and img_src/manifest.json
    python -m funmnist.img_src --check  # exit 1 if a figure is older than what it shows

The gallery has one tile per generator: its committed picture (fixed-noise samples, or a
translator's fixed test digits), titled with the model's name and its headline figure from the
metrics.json beside it. The structure figures are drawn from their specifications in
`funmnist.diagrams`. manifest.json records the SHA-256 of every picture and specification and the
figures shown, so a test can tell when a rerun or an edit has left img_src/ stale without
comparing pixels that another matplotlib draws apart.
"""

import argparse
import hashlib
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from . import diagrams  # noqa: E402
from .cli import REPO_ROOT  # noqa: E402

IMG_SRC = REPO_ROOT / "img_src"
GALLERY = IMG_SRC / "gallery.png"
MANIFEST = IMG_SRC / "manifest.json"
COLUMNS = 6


def pct(key: str, name: str):
    return lambda m: f"{name} {m[key]:.1%}"


def fid(m: dict) -> str:
    return f"fid {m['fid']:.1f}, is {m['is']:.2f}"


# (title, picture, headline), in the README's order; the metrics.json lies beside the picture
TILES = [
    ("VAE", "VAE/samples/latent_20/sample.png", fid),
    ("VAE-GAN", "VAE-GAN/samples/sample.png", fid),
    ("GAN", "GAN/samples/sample.png", fid),
    ("LSGAN", "LSGAN/samples/sample.png", fid),
    ("WGAN", "WGAN/samples/sample.png", fid),
    ("WGAN-GP", "WGAN-GP/samples/sample.png", fid),
    ("EBGAN", "EBGAN/samples/sample.png", fid),
    ("BEGAN", "BEGAN/samples/sample.png", fid),
    ("Conditional GAN", "Conditional_GAN/samples/sample.png", pct("cond_acc", "cond_acc")),
    ("ACGAN", "ACGAN/samples/sample.png", pct("cond_acc", "cond_acc")),
    ("InfoGAN (a row per code)", "InfoGAN/samples/categorical.png", pct("code_acc", "code_acc")),
    ("SGAN (100 labels)", "SGAN/samples/sample.png", pct("test_acc", "test acc")),
    ("CycleGAN: USPS -> MNIST", "CycleGAN/samples/translation.png", pct("translation_acc", "translation_acc")),
    ("UNIT: USPS -> MNIST", "UNIT/samples/translation.png", pct("translation_acc", "translation_acc")),
    ("Coupled GAN: digit, edges", "Coupled_GAN/samples/pairs.png", pct("pair_agreement", "pair_agreement")),
    ("pix2pix: edges -> digit", "pix2pix/samples/translation.png", pct("translation_acc", "translation_acc")),
    ("Spatial transformer", "Spatial_Transformer/samples/stn.png", pct("test_acc", "test acc")),
    ("t-SNE of MNIST", "misc/samples/mnist_tsne.png", lambda m: f"5-NN {m['tsne']['knn5_acc']:.1%}"),
]


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def manifest() -> dict:
    """What img_src/ shows: each tile's picture (by hash) and headline, from the files now committed, and
    each structure figure's specification (by hash)."""
    tiles = []
    for title, picture, headline in TILES:
        path = REPO_ROOT / picture
        metrics = json.loads((path.parent / "metrics.json").read_text())
        tiles.append(
            {"title": title, "picture": picture, "sha256": sha256(path.read_bytes()), "headline": headline(metrics)}
        )
    figures = {
        f"{name}.png": sha256(json.dumps(spec, sort_keys=True).encode()) for name, spec in diagrams.FIGURES.items()
    }
    return {"command": "python -m funmnist.img_src", "tiles": tiles, "structure_figures": figures}


def draw_gallery(record: dict) -> None:
    rows = -(-len(record["tiles"]) // COLUMNS)
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(2.4 * COLUMNS, 2.75 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, tile in zip(axes.flat, record["tiles"], strict=False):
        ax.imshow(mpimg.imread(REPO_ROOT / tile["picture"]), cmap="gray", interpolation="nearest")
        ax.set_title(f"{tile['title']}\n{tile['headline']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(GALLERY, dpi=100, metadata={"Software": None})
    plt.close(fig)


def draw(record: dict) -> None:
    """Every figure of img_src/, then the manifest that records what they show."""
    IMG_SRC.mkdir(exist_ok=True)
    draw_gallery(record)
    for name, spec in diagrams.FIGURES.items():
        diagrams.draw(spec, IMG_SRC / f"{name}.png")
    MANIFEST.write_text(json.dumps(record, indent=2) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description="Draw img_src/: the gallery and the structure figures.")
    p.add_argument("--check", action="store_true", help="only check that img_src/ shows the committed files")
    args = p.parse_args()
    record = manifest()
    if args.check:
        drawn = [GALLERY, *(IMG_SRC / name for name in record["structure_figures"])]
        if not MANIFEST.is_file() or json.loads(MANIFEST.read_text()) != record or not all(f.is_file() for f in drawn):
            sys.exit("img_src/ is older than the files it shows: run python -m funmnist.img_src")
        return
    draw(record)


if __name__ == "__main__":
    main()
