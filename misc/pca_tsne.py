"""MNIST test digits in two dimensions: PCA and t-SNE.

    python misc/pca_tsne.py       # about 2 minutes on a 2-core CPU

PCA projects the 32x32 images onto the two directions of largest variance; t-SNE (van der Maaten
& Hinton 2008), run on the first 50 principal components, places the points so that neighbours in
image space stay neighbours in the plane. How well the digits separate is measured by leave-one-out
5-nearest-neighbour accuracy in each 2-D embedding.
"""

import time

import matplotlib.pyplot as plt
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

import funmnist as fm
from funmnist.cli import prepare_out, seed_everything
from funmnist.run import provenance


def scatter(ax, points, labels, title):
    for digit in range(10):
        chosen = labels == digit
        ax.scatter(points[chosen, 0], points[chosen, 1], s=2, alpha=0.6, color=f"C{digit}", label=str(digit))
    ax.set_title(title)
    ax.legend(markerscale=5, loc="best", fontsize=8, title="digit")
    ax.set_xticks([])
    ax.set_yticks([])


def main():
    p = fm.parser(__file__, "PCA and t-SNE plots of the MNIST test set.", training=False)
    args = p.parse_args()
    seed_everything(args.seed)
    out = prepare_out(args.out)
    data = fm.load("MNIST", args.data_root, torch.device("cpu"))
    n = args.limit or len(data.test_x)
    images = data.test_x[:n].flatten(1).numpy()
    labels = data.test_y[:n].numpy()
    record = {"model": "misc", **provenance(torch.device("cpu")), "seed": args.seed, "images": n}

    start = time.perf_counter()
    pca = PCA(n_components=50, random_state=args.seed).fit(images)
    projected = pca.transform(images)
    pca_seconds = time.perf_counter() - start
    explained = pca.explained_variance_ratio_[:2]
    record["pca"] = {"knn5_acc": fm.knn_accuracy(projected[:, :2], labels), "seconds": round(pca_seconds, 2)}
    record["pca"]["explained_variance_2d"] = float(explained.sum())

    fig = plt.figure(figsize=(13, 6))
    scatter(
        fig.add_axes([0.03, 0.05, 0.5, 0.85]),
        projected[:, :2],
        labels,
        f"PCA of {n} test digits: PC1 {explained[0]:.1%} + PC2 {explained[1]:.1%} of the variance",
    )
    for i in range(16):
        ax = fig.add_axes([0.57 + (i % 4) * 0.105, 0.68 - (i // 4) * 0.21, 0.1, 0.19])
        extent = abs(pca.components_[i]).max()  # white is zero
        ax.imshow(pca.components_[i].reshape(32, 32), cmap="RdBu_r", vmin=-extent, vmax=extent)
        ax.set_title(f"PC{i + 1}", fontsize=8)
        ax.axis("off")
    fig.savefig(out / "mnist_pca.png", dpi=100)
    plt.close(fig)

    start = time.perf_counter()
    tsne = TSNE(n_components=2, perplexity=30, init="pca", learning_rate="auto", random_state=args.seed)
    embedded = tsne.fit_transform(projected)
    record["tsne"] = {"knn5_acc": fm.knn_accuracy(embedded, labels), "seconds": round(time.perf_counter() - start, 1)}
    fig, ax = plt.subplots(figsize=(8, 8))
    scatter(ax, embedded, labels, f"t-SNE of {n} test digits (after PCA to 50 dimensions)")
    fig.tight_layout()
    fig.savefig(out / "mnist_tsne.png", dpi=100)
    plt.close(fig)

    fm.write_metrics(out, record)
    print(f"misc: 5-NN accuracy PCA {record['pca']['knn5_acc']:.4f}, t-SNE {record['tsne']['knn5_acc']:.4f}")


if __name__ == "__main__":
    main()
