import errno
import json
import os
import signal
import subprocess
import sys

import imageio.v3 as iio
import pytest
import torch

import funmnist as fm
from funmnist.throughput import ENV, WINDOW


def make_run(tmp_path, *flags, n=320, folder="Toy"):
    args = fm.parser(str(tmp_path / folder / "train.py"), "toy", epochs=2, batch_size=32, lr=0.1).parse_args(
        ["--out", str(tmp_path / "out"), "--device", "cpu", *flags]
    )
    run = fm.Run(args)
    run.n_train = n
    return run


def toy_training(run, data):
    """A linear model trained by SGD with dropout noise: uses the RNG, so resume must restore it."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(net.parameters(), lr=run.args.lr)
    run.track(net=net, opt=opt)
    for x in run.batches(data):
        loss = net(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log(loss=loss)
        if run.frame_due:
            run.save_frame(torch.rand(4, 1, 8, 8))
    return net


def test_steps_epochs_and_frames(tmp_path):
    run = make_run(tmp_path)
    assert (run.steps_per_epoch, run.total_steps) == (10, 20)
    data = torch.randn(320, 4)
    toy_training(run, data)
    assert run.step == 20 and len(run.losses["loss"][0]) == 20
    assert len(run.frames) == 20  # fewer steps than GIF frames: one frame a step
    run.finish()
    assert len(iio.imread(run.out / "process.gif", index=None)) == 20
    assert (run.out / "loss.png").is_file() and (run.out / "metrics.json").is_file()


def test_gif_frames_spread_over_a_long_run(tmp_path):
    run = make_run(tmp_path, "--epochs", "30")
    toy_training(run, torch.randn(320, 4))
    steps = [int(name[5:11]) for name in run.frames]
    assert len(steps) == 24 and steps[-1] == 300 and steps[0] <= 300 / 24 + 1
    assert max(b - a for a, b in zip(steps, steps[1:], strict=False)) <= 300 / 24 + 1


def test_resume_continues_exactly(tmp_path):
    data = torch.randn(320, 4)
    whole = toy_training(make_run(tmp_path / "a"), data)
    first = make_run(tmp_path / "b", "--max-steps", "7")
    toy_training(first, data)
    assert first.step == 7 and (first.out / "checkpoint.pt").is_file()
    second = make_run(tmp_path / "b", "--resume")
    resumed = toy_training(second, data)
    assert second.step == 20 and len(second.losses["loss"][1]) == 20
    for p, q in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_resume_refuses_other_flags(tmp_path, capsys):
    toy_training(make_run(tmp_path, "--max-steps", "3"), torch.randn(320, 4))
    with pytest.raises(SystemExit) as stop:
        toy_training(make_run(tmp_path, "--resume", "--lr", "0.5"), torch.randn(320, 4))
    assert stop.value.code == 2
    assert "--lr: the checkpoint was made with 0.1, not 0.5" in capsys.readouterr().err


def test_resume_refuses_another_models_checkpoint(tmp_path, capsys):
    toy_training(make_run(tmp_path, "--max-steps", "3"), torch.randn(320, 4))
    with pytest.raises(SystemExit) as stop:
        toy_training(make_run(tmp_path, "--resume", folder="Other"), torch.randn(320, 4))
    assert stop.value.code == 2 and "a checkpoint of Toy, not of Other" in capsys.readouterr().err


def test_non_finite_loss_stops_naming_the_step(tmp_path, capsys):
    run = make_run(tmp_path)
    data = torch.randn(320, 4)
    with pytest.raises(SystemExit) as stop:
        for x in run.batches(data):
            run.log(loss=x.sum() if run.step < 13 else torch.tensor(float("nan")))
    assert stop.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "loss loss is nan at step 13" in err and "last good checkpoint" in err
    saved = torch.load(run.checkpoint_path, weights_only=True)
    assert saved["step"] == 10  # the end of epoch 1, before the bad step


@pytest.mark.parametrize(
    "sig, status, what", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")]
)
def test_a_stop_signal_saves_a_checkpoint_and_stops(tmp_path, capsys, sig, status, what):
    run = make_run(tmp_path)
    with pytest.raises(SystemExit) as stop:
        for _ in run.batches(torch.randn(320, 4)):
            run.log(loss=1.0)
            if run.step == 4:
                os.kill(os.getpid(), sig)  # what Ctrl-C, timeout or docker stop send
    assert stop.value.code == status
    assert torch.load(run.checkpoint_path, weights_only=True)["step"] == 4
    err = capsys.readouterr().err
    assert "Traceback" not in err  # the progress bar's lines, then one line
    assert f"{what} at step 4; checkpoint saved, continue with --resume" in err.strip().splitlines()[-1]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back after the loop


def test_a_stale_lock_is_taken_over_and_released_at_exit(tmp_path, capsys):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # a process id that no longer runs
    (tmp_path / "out").mkdir()
    lock = tmp_path / "out" / ".run.lock"
    lock.write_text(f"{ended.pid}\n")
    make_run(tmp_path)
    assert f"taking over {lock}, left by process {ended.pid}" in capsys.readouterr().err
    assert lock.read_text().strip() == str(os.getpid())
    make_run(tmp_path)  # this process's own lock: kept, no message
    assert capsys.readouterr().err == ""
    fm.run.release(lock)
    assert not lock.exists()


def test_a_live_lock_stops_a_second_run(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / ".run.lock").write_text(f"{holder.pid}\n")
        with pytest.raises(SystemExit) as stop:
            make_run(tmp_path)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"in use by another run (process {holder.pid})" in err[0]
    finally:
        holder.kill()
        holder.wait()


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_checkpoint_write_stops_and_keeps_the_previous_one(tmp_path, capsys, monkeypatch):
    run = make_run(tmp_path)
    with pytest.raises(SystemExit) as stop:
        for _ in run.batches(torch.randn(320, 4)):
            run.log(loss=1.0)
            if run.step == 11:  # epoch 1 ended at step 10 with its checkpoint; epoch 2's will fail
                monkeypatch.setattr(torch, "save", no_space)
    assert stop.value.code == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after the progress bar's lines
    assert "Traceback" not in err and f"{run.checkpoint_path}: cannot be written (No space left on device)" in last
    assert "the previous checkpoint stays whole" in last
    monkeypatch.undo()
    assert torch.load(run.checkpoint_path, weights_only=True)["step"] == 10
    assert not run.checkpoint_path.with_suffix(".tmp").exists()


@pytest.mark.parametrize("writer", ["frame", "metrics"])
def test_a_failed_figure_or_metrics_write_is_one_line(tmp_path, capsys, monkeypatch, writer):
    run = make_run(tmp_path)
    if writer == "frame":
        monkeypatch.setattr("torchvision.utils.save_image", no_space)
        path, call = run.out / "step_000000.png", lambda: run.save_frame(torch.rand(4, 1, 8, 8))
    else:
        monkeypatch.setattr(type(run.out), "write_text", no_space)
        path, call = run.out / "metrics.json", run.finish
    with pytest.raises(SystemExit) as stop:
        call()
    assert stop.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}: cannot be written (No space left on device)" in err[0]


def test_moving_average_of_weights_and_batchnorm_statistics():
    net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    average = fm.moving_average(net, decay=0.5)
    expected = None
    for n, value in enumerate([4.0, 0.0, 2.0, 6.0]):
        with torch.no_grad():
            net[0].weight.fill_(value)
            net[1].running_mean.fill_(-value)
        net[1].num_batches_tracked += 1
        average.update_parameters(net)
        # the first update copies; after n updates the next keeps min(decay, (1 + n) / (10 + n)) of the average
        kept = min(0.5, (1 + n) / (10 + n))
        expected = value if expected is None else kept * expected + (1 - kept) * value
        assert average.module[0].weight.item() == pytest.approx(expected)
        assert average.module[1].running_mean.item() == pytest.approx(-expected)
    # 4; then 2/11 of it; 3/12 of that + 9/12 of 2; 4/13 of that + 9/13 of 6
    assert expected == pytest.approx(4.6713, abs=1e-4)
    assert average.module[1].num_batches_tracked.item() == 4
    assert net[0].weight.item() == 6.0  # the trained module is left alone


def test_settle_batchnorm_gives_the_averaged_network_its_own_statistics():
    net = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.BatchNorm1d(1))
    average = fm.moving_average(net)
    with torch.no_grad():
        average.module[0].weight.fill_(3.0)
        average.module[0].bias.fill_(1.0)
    inputs = iter([torch.tensor([[0.0], [2.0]]), torch.tensor([[4.0], [6.0]])])
    average.eval()
    fm.settle_batchnorm(average, lambda n: next(inputs), samples=4, batch_size=2)
    bn = average.module[1]
    # outputs 1, 7 | 13, 19: mean 10; each batch's unbiased variance is 18, and the batches' mean is kept
    assert bn.running_mean.item() == pytest.approx(10.0) and bn.running_var.item() == pytest.approx(18.0)
    assert not average.training and bn.momentum == 0.1  # mode and momentum restored


class ShiftedNorm(torch.nn.Module):
    """BatchNorm of z + shift: a generator with two inputs, as the conditional ones have."""

    def __init__(self):
        super().__init__()
        self.norm = torch.nn.BatchNorm1d(1)

    def forward(self, z, shift):
        return self.norm(z + shift)


def test_settle_batchnorm_passes_each_of_a_tuples_inputs():
    average = fm.moving_average(ShiftedNorm())
    inputs = iter([(torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [5.0]])), (torch.tensor([[4.0], [6.0]]), 9.0)])
    fm.settle_batchnorm(average, lambda n: next(inputs), samples=4, batch_size=2)
    norm = average.module.norm
    # z + shift = 1, 7 | 13, 15: mean 9; the batches' unbiased variances 18 and 2 average to 10
    assert norm.running_mean.item() == pytest.approx(9.0) and norm.running_var.item() == pytest.approx(10.0)


def test_linear_decay_keeps_the_rate_for_half_the_run_then_falls_to_zero(tmp_path):
    run = make_run(tmp_path)  # 20 steps
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    (sched,) = run.linear_decay(opt)
    rates = []
    for _ in range(run.total_steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[:11] == [0.1] * 11  # steps 0..10: (20 - s) / 10 >= 1
    assert rates[15] == pytest.approx(0.05) and rates[19] == pytest.approx(0.01)
    assert opt.param_groups[0]["lr"] == 0  # after the last step


def test_a_throughput_window_counts_flops_by_hand_times_steps_and_exits(tmp_path, monkeypatch):
    figures = tmp_path / "window.json"
    monkeypatch.setenv(ENV, str(figures))
    run = make_run(tmp_path, "--epochs", "4")  # 40 steps: enough for the 3 + 10 + 20 of the window
    with pytest.raises(SystemExit) as stop:
        toy_training(run, torch.randn(320, 4))
    assert stop.value.code == 0 and run.step == WINDOW
    r = json.loads(figures.read_text())
    # Linear(4, 1) on 32 rows: 2 * 32 * 4 FLOPs forward, as many for the weight's gradient (x needs none)
    assert r["gflop_per_step"] * 1e9 == pytest.approx(2 * (2 * 32 * 4))
    assert r["images_per_s"] == pytest.approx(32 * r["steps_per_s"]) and r["steps_per_s"] > 0
    assert r["gflops"] == pytest.approx(r["gflop_per_step"] * r["steps_per_s"])
    assert 0 < r["outside_share"] < 1  # the toy's frames and logging are outside its optimiser step
