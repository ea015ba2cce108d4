"""Train the evaluator classifier (funmnist/evaluator.py) and write its weights for committing.

python -m funmnist.train_evaluator     # 8 epochs, about 4 minutes on a 2-core CPU
"""

import torch
import torch.nn.functional as F

from .cli import parser
from .data import random_shift
from .evaluator import WEIGHTS, Evaluator
from .metrics import accuracy, frechet_distance, reference_features
from .run import Run


def main() -> None:
    args = parser(
        __file__,
        "Train the evaluator classifier.",
        epochs=8,
        batch_size=128,
        lr=2e-3,
        out=WEIGHTS.parent,
        name="evaluator",
    ).parse_args()
    run = Run(args)
    data = run.load_data()
    net = run.to_device(Evaluator())
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=run.total_steps)
    run.track(net=net, opt=opt, sched=sched)
    for x, y in run.batches(data.train_x, data.train_y):
        # Small shifts make it robust to the imperfect centring of generated digits.
        loss = F.cross_entropy(net(random_shift(x, 2)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run.log(loss=loss)
        if run.epoch_done:
            run.log_epoch(test_acc=accuracy(net, data.test_x, data.test_y))
    # Contiguous weights load into any layout; the state dict alone loads with weights_only=True.
    torch.save({k: v.contiguous() for k, v in net.state_dict().items()}, run.out / WEIGHTS.name)
    test_acc = accuracy(net, data.test_x, data.test_y)
    # The floor of every generator's FID: 10,000 real training images against the test set.
    net.eval()
    fid_real = frechet_distance(*reference_features(data, net=net))
    run.finish(test_acc=test_acc, fid_real=fid_real, parameters=sum(p.numel() for p in net.parameters()))


if __name__ == "__main__":
    main()
