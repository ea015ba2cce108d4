"""The USPS -> MNIST gap before any translation, in each of the two framings of USPS.

    python misc/usps_framing.py       # about a minute on a 2-core CPU -> misc/samples/usps_framing/

USPS digits are 16x16 and fill their frame; MNIST's sit in a 20-pixel box inside 28x28. `full`
resizes USPS to 32 (the domain-adaptation literature's framing, and the translators' default),
`mnist` to 20, padded to 32. For each framing, on the USPS test set: the evaluator's accuracy
(`source_acc`, the baseline a translator must beat) and that of the small classifier that the
translators' `adapted_acc` trains, here trained on raw MNIST (`source_classifier_acc`).
"""

import time

import torch

import funmnist as fm
from funmnist.cli import prepare_out, seed_everything
from funmnist.evaluator import load_evaluator
from funmnist.run import provenance


def main():
    p = fm.parser(
        __file__, "The USPS -> MNIST gap in each framing.", training=False, subfolder=lambda a: "usps_framing"
    )
    args = p.parse_args()
    start = time.perf_counter()
    seed_everything(args.seed)
    out = prepare_out(args.out)
    device = torch.device("cpu")
    mnist = fm.load("MNIST", args.data_root, device)
    classifier = fm.train_classifier(mnist.train_x, mnist.train_y, seed=args.seed)
    evaluator = load_evaluator(device)
    record = {"model": "USPS framing", **provenance(device), "seed": args.seed}
    shown = [mnist.test_x[:8]]
    for framing in fm.USPS_FRAMINGS:
        usps = fm.load_usps(args.data_root, device, framing)
        shown.append(usps.test_x[:8])
        record[framing] = {
            "source_acc": fm.accuracy(evaluator, usps.test_x, usps.test_y),
            "source_classifier_acc": fm.accuracy(classifier, usps.test_x, usps.test_y),
        }
    fm.save_grid(torch.cat(shown), out / "framings.png")  # rows: MNIST, USPS full, USPS mnist
    record["seconds"] = round(time.perf_counter() - start, 1)
    fm.write_metrics(out, record)
    print(", ".join(f"{k}: source_acc {v['source_acc']:.4f}" for k, v in record.items() if k in fm.USPS_FRAMINGS))


if __name__ == "__main__":
    main()
