"""Structure figures: each model's networks as blocks, its data as arrows, and where each loss is taken.

A figure is data: a title, nodes (label, kind, x, y) and arrows (from, to); `draw` lays it out with
matplotlib. Kinds: "data" (images, codes, labels; grey), "net" (a network; blue), "loss" (orange).
`python -m funmnist.img_src` draws every figure into img_src/ beside the gallery.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "data": {"boxstyle": "round,pad=0.35", "fc": "#eeeeee", "ec": "#666666"},
    "net": {"boxstyle": "square,pad=0.45", "fc": "#cfe2f3", "ec": "#2b5d8a"},
    "loss": {"boxstyle": "round,pad=0.35", "fc": "#fbe0cc", "ec": "#b34700"},
}


def data(label, x, y):
    return (label, "data", x, y)


def net(label, x, y):
    return (label, "net", x, y)


def loss(label, x, y):
    return (label, "loss", x, y)


def gan_pair(objective: str, title: str, generator="generator $G$", critic="discriminator $D$") -> dict:
    """z -> G -> G(z), judged by D beside real digits: the unconditional GANs, which differ in D and the loss."""
    return {
        "title": title,
        "nodes": {
            "z": data("$z \\sim N(0, I)$", 0, 0),
            "G": net(generator, 1.7, 0),
            "fake": data("$G(z)$", 3.4, 0),
            "real": data("real digit $x$", 3.4, -1.3),
            "D": net(critic, 5.2, -0.65),
            "loss": loss(objective, 7.6, -0.65),
        },
        "arrows": [("z", "G"), ("G", "fake"), ("fake", "D"), ("real", "D"), ("D", "loss")],
    }


FIGURES = {
    "classification": {
        "title": "Classification: a CNN on the labels",
        "nodes": {
            "x": data("digit $x$", 0, 0),
            "cnn": net("CNN: four stride-2\nconvs, a linear layer", 1.9, 0),
            "logits": data("10 logits", 3.8, 0),
            "ce": loss("cross-entropy\nwith the label $y$", 5.6, 0),
        },
        "arrows": [("x", "cnn"), ("cnn", "logits"), ("logits", "ce")],
    },
    "ae": {
        "title": "AE: a code that reconstructs the digit",
        "nodes": {
            "x": data("digit $x$", 0, 0),
            "E": net("encoder $E$", 1.6, 0),
            "z": data("code $z$", 3.2, 0),
            "D": net("decoder $D$", 4.8, 0),
            "xhat": data("$\\hat x = D(E(x))$", 6.5, 0),
            "mse": loss("$\\|\\hat x - x\\|^2$ (+ $\\lambda \\|z\\|^2$)", 6.5, -1.2),
        },
        "arrows": [("x", "E"), ("E", "z"), ("z", "D"), ("D", "xhat"), ("xhat", "mse")],
    },
    "vae": {
        "title": "VAE: an encoder to a posterior, a decoder from its sample",
        "nodes": {
            "x": data("digit $x$", 0, 0),
            "E": net("encoder", 1.5, 0),
            "q": data("$\\mu(x), \\sigma(x)$", 3.0, 0),
            "eps": data("$\\epsilon \\sim N(0, I)$", 4.7, 1.1),
            "z": data("$z = \\mu + \\sigma \\epsilon$", 4.7, 0),
            "D": net("decoder", 6.3, 0),
            "xhat": data("$p(x | z)$", 7.7, 0),
            "kl": loss("KL$(q(z | x) \\,\\|\\, N(0, I))$", 3.0, -1.2),
            "rec": loss("$-\\log p(x | z)$ (BCE)", 7.7, -1.2),
        },
        "arrows": [("x", "E"), ("E", "q"), ("q", "z"), ("eps", "z"), ("z", "D"), ("D", "xhat")]
        + [("q", "kl"), ("xhat", "rec")],
    },
    "aae": {
        "title": "Adversarial autoencoder: a discriminator matches the codes to a prior",
        "nodes": {
            "x": data("digit $x$", 0, 0),
            "E": net("encoder $E$", 1.6, 0),
            "z": data("code $z = E(x)$", 3.3, 0),
            "dec": net("decoder", 5.0, 0),
            "xhat": data("$\\hat x$", 6.4, 0),
            "rec": loss("BCE$(\\hat x, x)$", 7.8, 0),
            "prior": data("$z' \\sim p(z)$\n(triangle or donut)", 1.6, -1.4),
            "Dz": net("discriminator\non codes", 3.3, -1.4),
            "gan": loss("GAN: $z'$ real, $E(x)$ fake", 5.6, -1.4),
        },
        "arrows": [("x", "E"), ("E", "z"), ("z", "dec"), ("dec", "xhat"), ("xhat", "rec")]
        + [("z", "Dz"), ("prior", "Dz"), ("Dz", "gan")],
    },
    "vaegan": {
        "title": "VAE-GAN: a VAE whose reconstruction error is measured in a discriminator's features",
        "nodes": {
            "x": data("digit $x$", 0, 0),
            "E": net("encoder", 1.5, 0),
            "z": data("$z \\sim q(z | x)$", 3.0, 0),
            "zp": data("$z_p \\sim N(0, I)$", 3.0, -1.3),
            "dec": net("decoder", 4.6, -0.65),
            "xt": data("$\\tilde x$", 6.0, 0),
            "xp": data("$x_p$", 6.0, -1.3),
            "real": data("$x$", 6.0, 1.1),
            "dis": net("discriminator", 7.5, 0),
            "kl": loss("KL", 3.0, 1.1),
            "feat": loss("$\\|Dis_l(\\tilde x) - Dis_l(x)\\|^2$", 9.6, 0.6),
            "gan": loss("GAN: $x$ real, $x_p$ fake", 9.6, -0.7),
        },
        "arrows": [("x", "E"), ("E", "z"), ("z", "dec"), ("zp", "dec"), ("dec", "xt"), ("dec", "xp")]
        + [("xt", "dis"), ("xp", "dis"), ("real", "dis"), ("z", "kl"), ("dis", "feat"), ("dis", "gan")],
    },
    "gan": gan_pair(
        "BCE: $x$ real, $G(z)$ fake\nG: $-\\log \\sigma(D(G(z)))$", "GAN: a generator against a discriminator"
    ),
    "lsgan": gan_pair("D: $(D(x) - 1)^2 + D(G(z))^2$\nG: $(D(G(z)) - 1)^2$", "LSGAN: least squares in place of BCE"),
    "wgan": gan_pair(
        "critic: $f(G(z)) - f(x)$, weights clipped\nG: $-f(G(z))$",
        "WGAN: a critic estimates the Wasserstein distance",
        critic="critic $f$",
    ),
    "wgangp": gan_pair(
        "critic: $f(G(z)) - f(x) + \\lambda (\\|\\nabla f(\\hat x)\\| - 1)^2$\n"
        "$\\hat x$ between $x$ and $G(z)$; G: $-f(G(z))$",
        "WGAN-GP: the critic's gradient penalised to norm 1",
        critic="critic $f$",
    ),
    "ebgan": gan_pair(
        "energy $E = \\|AE(\\cdot) - \\cdot\\|^2$\nD: $E(x) + [m - E(G(z))]^+$\nG: $E(G(z))$ + pull-away",
        "EBGAN: the discriminator is an autoencoder, its error an energy",
        critic="autoencoder $D$",
    ),
    "began": gan_pair(
        "$L = \\|AE(\\cdot) - \\cdot\\|_1$\nD: $L(x) - k_t L(G(z))$,  G: $L(G(z))$\n"
        "$k_t$ keeps $L(G(z)) = \\gamma L(x)$",
        "BEGAN: an autoencoder discriminator held at an equilibrium",
        critic="autoencoder $D$",
    ),
    "cgan": {
        "title": "Conditional GAN: both networks are told the digit",
        "nodes": {
            "z": data("$z$", 0, 0.6),
            "y": data("label $y$", 0, -0.6),
            "G": net("generator $G$", 1.7, 0),
            "fake": data("$(G(z, y), y)$", 3.5, 0),
            "real": data("real pair $(x, y)$", 3.5, -1.3),
            "D": net("discriminator $D$", 5.4, -0.65),
            "loss": loss("BCE: real pairs real,\ngenerated pairs fake", 7.6, -0.65),
        },
        "arrows": [("z", "G"), ("y", "G"), ("G", "fake"), ("fake", "D"), ("real", "D"), ("D", "loss")],
    },
    "acgan": {
        "title": "ACGAN: the discriminator also names the digit",
        "nodes": {
            "z": data("$z$", 0, 0.6),
            "c": data("class $c$", 0, -0.6),
            "G": net("generator $G$", 1.7, 0),
            "fake": data("$G(z, c)$", 3.4, 0),
            "real": data("real digit $x$", 3.4, -1.3),
            "D": net("discriminator", 5.2, -0.65),
            "src": loss("source: BCE", 7.2, 0),
            "cls": loss("class: CE with $y$ (real);\nG: CE with $c$", 7.5, -1.3),
        },
        "arrows": [("z", "G"), ("c", "G"), ("G", "fake"), ("fake", "D"), ("real", "D"), ("D", "src"), ("D", "cls")],
    },
    "infogan": {
        "title": "InfoGAN: codes the generator must keep readable",
        "nodes": {
            "z": data("noise $z$", 0, 0.6),
            "c": data("codes $c$: one of 10,\ntwo continuous", 0, -0.6),
            "G": net("generator $G$", 1.9, 0),
            "fake": data("$G(z, c)$", 3.5, 0),
            "real": data("real digit $x$", 3.5, -1.3),
            "D": net("discriminator\nwith head $Q$", 5.3, -0.65),
            "adv": loss("real/fake: BCE", 7.4, 0),
            "info": loss("$Q(c | G(z, c))$: CE and\nGaussian NLL with $c$", 7.6, -1.3),
        },
        "arrows": [("z", "G"), ("c", "G"), ("G", "fake"), ("fake", "D"), ("real", "D"), ("D", "adv"), ("D", "info")],
    },
    "sgan": {
        "title": "SGAN: a classifier with an 11th class, fake",
        "nodes": {
            "z": data("$z$", 0, 0),
            "G": net("generator $G$", 1.6, 0),
            "fake": data("$G(z)$", 3.2, 0),
            "lab": data("100 labelled $(x, y)$", 3.2, -1.1),
            "unl": data("unlabelled $x$", 3.2, -2.2),
            "D": net("classifier $D$: 10 logits,\nfake's fixed at 0", 5.3, -1.1),
            "sup": loss("CE with $y$", 7.4, -0.4),
            "uns": loss("real vs fake; G matches\nD's features of real $x$", 7.8, -1.8),
        },
        "arrows": [("z", "G"), ("G", "fake"), ("fake", "D"), ("lab", "D"), ("unl", "D"), ("D", "sup"), ("D", "uns")],
    },
    "transfer": {
        "title": "Transfer learning: MNIST features for Fashion-MNIST",
        "nodes": {
            "mnist": data("MNIST, 60,000 labels", 0, 0),
            "cnn": net("Classification's CNN,\ntrained on MNIST", 2.0, 0),
            "probe": net("probe: frozen,\na new linear head", 4.2, 0.5),
            "fine": net("fine-tune:\nevery layer", 4.2, -0.7),
            "scratch": net("scratch: the same\nCNN, new weights", 4.2, -1.9),
            "fashion": data("Fashion-MNIST\n100 / 1,000 / 60,000 labels", 6.7, -0.7),
            "ce": loss("test accuracy", 8.7, -0.7),
        },
        "arrows": [("mnist", "cnn"), ("cnn", "probe"), ("cnn", "fine"), ("probe", "fashion")]
        + [("fine", "fashion"), ("scratch", "fashion"), ("fashion", "ce")],
    },
    "stn": {
        "title": "Spatial transformer: a network that undoes the distortion first",
        "nodes": {
            "x": data("distorted digit $x$\n(42x42)", 0, 0),
            "loc": net("localisation net", 1.9, 1.1),
            "theta": data("affine $\\theta$", 3.7, 1.1),
            "sampler": net("grid sampler", 3.7, 0),
            "xt": data("$\\mathcal{T}_\\theta(x)$", 5.3, 0),
            "cnn": net("CNN", 6.7, 0),
            "ce": loss("cross-entropy", 8.2, 0),
        },
        "arrows": [("x", "loc"), ("loc", "theta"), ("theta", "sampler"), ("x", "sampler"), ("sampler", "xt")]
        + [("xt", "cnn"), ("cnn", "ce")],
    },
    "cyclegan": {
        "title": "CycleGAN: two translators held to each other by the cycle (and likewise from MNIST)",
        "nodes": {
            "x": data("USPS digit $x$", 0, 0),
            "G": net("$G$: USPS to MNIST", 1.9, 0),
            "gx": data("$G(x)$", 3.7, 0),
            "F": net("$F$: MNIST to USPS", 5.4, 0),
            "fgx": data("$F(G(x))$", 7.1, 0),
            "cyc": loss("cycle: $\\|F(G(x)) - x\\|_1$", 7.1, -1.3),
            "real": data("MNIST digits $y$", 1.9, -1.3),
            "DM": net("$D_M$ (PatchGAN)", 3.7, -1.3),
            "gan": loss("least squares:\n$y$ real, $G(x)$ fake", 5.4, -1.3),
        },
        "arrows": [("x", "G"), ("G", "gx"), ("gx", "F"), ("F", "fgx"), ("fgx", "cyc")]
        + [("gx", "DM"), ("real", "DM"), ("DM", "gan")],
    },
    "unit": {
        "title": "UNIT: two VAE-GANs sharing a latent space (shared: the encoders' last layers, the generators' first)",
        "nodes": {
            "x": data("USPS digit $x$", 0, 0.65),
            "y": data("MNIST digit $y$", 0, -0.65),
            "EU": net("$E_U$", 1.6, 0.65),
            "EM": net("$E_M$", 1.6, -0.65),
            "z": data("shared code $z$", 3.2, 0),
            "kl": loss("KL$(q(z | \\cdot) \\,\\|\\, N(0, I))$", 3.2, 1.3),
            "GU": net("$G_U$", 4.8, 0.65),
            "GM": net("$G_M$", 4.8, -0.65),
            "oU": data("$G_U(z)$", 6.3, 0.65),
            "oM": data("$G_M(z)$", 6.3, -0.65),
            "DU": net("$D_U$", 7.6, 0.65),
            "DM": net("$D_M$", 7.6, -0.65),
            "rec": loss("same domain: $L_1$ reconstruction;\nacross: GAN, and the cycle back", 9.9, 0),
        },
        "arrows": [("x", "EU"), ("y", "EM"), ("EU", "z"), ("EM", "z"), ("z", "kl"), ("z", "GU"), ("z", "GM")]
        + [("GU", "oU"), ("GM", "oM"), ("oU", "DU"), ("oM", "DM"), ("DU", "rec"), ("DM", "rec")],
    },
    "pix2pix": {
        "title": "pix2pix: a U-Net from edges to digits, judged on the pair",
        "nodes": {
            "x": data("digit $x$", 0, 0),
            "e": data("edges $e(x)$", 1.6, 0),
            "G": net("U-Net $G$", 3.2, 0),
            "gx": data("$G(e)$", 4.7, 0),
            "D": net("PatchGAN $D$\nsees $(e, \\cdot)$", 6.3, 0),
            "gan": loss("BCE: $(e, x)$ real,\n$(e, G(e))$ fake", 8.4, 0),
            "l1": loss("$100 \\, \\|G(e) - x\\|_1$", 4.7, -1.2),
        },
        "arrows": [("x", "e"), ("e", "G"), ("G", "gx"), ("gx", "D"), ("D", "gan"), ("gx", "l1")],
    },
    "cogan": {
        "title": "Coupled GAN: two GANs sharing all but their ends, trained on unpaired digits and edges",
        "nodes": {
            "z": data("one $z$", 0, 0),
            "trunk": net("shared\ngenerator trunk", 1.7, 0),
            "g1": net("$g_1$'s last layer", 3.6, 0.65),
            "g2": net("$g_2$'s last layer", 3.6, -0.65),
            "x1": data("digit", 5.2, 0.65),
            "x2": data("its edges", 5.2, -0.65),
            "f1": net("$f_1$'s first layer", 6.8, 0.65),
            "f2": net("$f_2$'s first layer", 6.8, -0.65),
            "dtrunk": net("shared\ndiscriminator trunk", 8.6, 0),
            "gan": loss("BCE per domain:\nits own real images", 10.5, 0),
        },
        "arrows": [("z", "trunk"), ("trunk", "g1"), ("trunk", "g2"), ("g1", "x1"), ("g2", "x2"), ("x1", "f1")]
        + [("x2", "f2"), ("f1", "dtrunk"), ("f2", "dtrunk"), ("dtrunk", "gan")],
    },
}


def draw(figure: dict, path) -> None:
    """Lay one figure out: boxes at their (x, y) in inches' units, arrows clipped at the boxes' edges."""
    xs = [x for _, _, x, _ in figure["nodes"].values()]
    ys = [y for _, _, _, y in figure["nodes"].values()]
    width, height = max(xs) - min(xs) + 2.6, max(ys) - min(ys) + 1.5
    fig = plt.figure(figsize=(width * 0.95, height * 0.85))
    ax = fig.add_axes([0, 0, 1, 0.88])
    ax.set_xlim(min(xs) - 1.3, max(xs) + 1.3)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.axis("off")
    boxes = {
        key: ax.text(x, y, label, ha="center", va="center", fontsize=10, bbox=STYLE[kind])
        for key, (label, kind, x, y) in figure["nodes"].items()
    }
    for start, end in figure["arrows"]:
        a, b = boxes[start], boxes[end]
        ax.annotate(
            "",
            xy=b.get_position(),
            xytext=a.get_position(),
            arrowprops={
                "arrowstyle": "-|>",
                "color": "#333333",
                "patchA": a.get_bbox_patch(),
                "patchB": b.get_bbox_patch(),
            },
        )
    fig.suptitle(figure["title"], fontsize=11, y=0.97)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.15, metadata={"Software": None})
    plt.close(fig)
