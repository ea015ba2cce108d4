"""Every script run as a user runs it: a smoke run makes its files; bad input stops in one line."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import DATA_ROOT, REPO, SMALL, assert_one_line_error, run_script

import funmnist as fm
from funmnist.evaluator import Evaluator

REQUIRED = {"model", "command", "epochs", "steps", "seconds", "device", "torch", "seed"}


def test_classification_smoke_and_exact_resume(tmp_path):
    whole = run_script("Classification/train.py", *SMALL, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    for name in ("real.png", "loss.png", "accuracy.png", "metrics.json", "checkpoint.pt"):
        assert (tmp_path / "whole" / name).is_file(), name
    metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert REQUIRED | {"test_acc", "first_epoch_test_acc_99"} <= metrics.keys()
    assert metrics["model"] == "Classification" and metrics["steps"] == 16 and 0 <= metrics["test_acc"] <= 1
    assert metrics["command"].startswith("python Classification/train.py --limit 256")

    stopped = run_script("Classification/train.py", *SMALL, "--out", tmp_path / "split", "--max-steps", "5")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads((tmp_path / "split" / "metrics.json").read_text())["steps"] == 5
    resumed = run_script("Classification/train.py", *SMALL, "--out", tmp_path / "split", "--resume")
    assert resumed.returncode == 0, resumed.stderr

    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 16
    assert a["losses"] == b["losses"] and a["epoch_log"] == b["epoch_log"]
    for key, tensor in a["objects"]["net"].items():
        assert torch.equal(tensor, b["objects"]["net"][key]), key
    final = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert final["test_acc"] == metrics["test_acc"]


@pytest.mark.parametrize(
    "flags, phrases",
    [
        (["--epochs", "0"], ["--epochs", "expected an integer >= 1, got 0"]),
        (["--batch-size", "-3"], ["--batch-size", "got -3"]),
        (["--lr", "nan"], ["--lr", "expected a positive number"]),
        (["--device", "tpu"], ["--device", "invalid choice"]),
        (["--label-smoothing", "1.5"], ["--label-smoothing", "expected a number in [0, 1), got 1.5"]),
        (["--shift", "-1"], ["--shift", "expected an integer >= 0, got -1"]),
        (["--data-root", "/no/such/folder"], ["/no/such/folder does not exist"]),
        (["--out", "/dev/null/out"], ["--out: cannot write to /dev/null/out"]),
        (["--limit", "10", "--batch-size", "64"], ["--batch-size: 64 is more than the 10 training images"]),
    ],
)
def test_bad_input_stops_with_one_line(flags, phrases):
    assert_one_line_error(run_script("Classification/train.py", *flags), 2, *phrases)


def test_unit_interval_takes_both_ends():  # BEGAN's gamma may be 1, as in the paper
    assert fm.unit_interval("0") == 0 and fm.unit_interval("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a number in \[0, 1\], got 1.5"):
        fm.unit_interval("1.5")


def test_resume_without_a_checkpoint(tmp_path):
    result = run_script("Classification/train.py", "--resume", "--out", tmp_path)
    assert_one_line_error(result, 2, "--resume: no checkpoint at")


def test_corrupt_or_foreign_checkpoint(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    result = run_script("Classification/train.py", *SMALL, "--resume", "--out", tmp_path)
    assert_one_line_error(result, 2, "checkpoint.pt: not a readable checkpoint")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "checkpoint.pt")
    result = run_script("Classification/train.py", *SMALL, "--resume", "--out", tmp_path)
    assert_one_line_error(result, 2, "checkpoint.pt: not a checkpoint of a Fun with MNIST run")


def test_misc_smoke(tmp_path):
    result = run_script("misc/pca_tsne.py", "--limit", "300", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mnist_pca.png").is_file() and (tmp_path / "mnist_tsne.png").is_file()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for method in ("pca", "tsne"):
        assert 0.1 < metrics[method]["knn5_acc"] <= 1 and metrics[method]["seconds"] >= 0
    assert metrics["tsne"]["knn5_acc"] > metrics["pca"]["knn5_acc"]


def test_evaluator_training_smoke(tmp_path):
    result = run_script("funmnist.train_evaluator", *SMALL, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    Evaluator().load_state_dict(torch.load(tmp_path / "evaluator.pt", weights_only=True))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"] == "evaluator" and metrics["command"].startswith("python -m funmnist.train_evaluator")
    assert metrics["fid_real"] > 0 and 0 <= metrics["test_acc"] <= 1


def test_benchmark_smoke(tmp_path):
    flags = ["--steps", "2", "--device", "cpu", "--data-root", DATA_ROOT, "--out", tmp_path / "b.json"]
    result = run_script("benchmarks/data_path.py", *flags)
    assert result.returncode == 0, result.stderr
    assert "training, in-memory tensors" in result.stdout and "one epoch of batches" in result.stdout
    figures = json.loads((tmp_path / "b.json").read_text())
    assert figures["ratio"] == pytest.approx(figures["in_memory"] / figures["dataloader"], rel=0.01)


def test_throughput_benchmark_measures_a_scripts_own_window(tmp_path):
    out = tmp_path / "t.json"
    result = run_script("benchmarks/throughput.py", "VAE", "--device", "cpu", "--out", out)
    assert result.returncode == 0, result.stderr
    cpu = json.loads(out.read_text())["cpu"]
    vae = cpu["models"]["VAE"]
    assert list(cpu["models"]) == ["VAE"] and vae["batch_size"] == 128 and vae["gflop_per_step"] > 0
    assert vae["peak_share"] == pytest.approx(vae["gflops"] / cpu["peak_gflops"]["fp32"])
    # each dtype's peak is taken at a power of two from 256 up to 2048, the largest on a CPU
    assert set(cpu["matmul_n"].values()) <= {256, 512, 1024, 2048} and set(cpu["matmul_n"]) == {"fp32", "bf16"}
    result = run_script("benchmarks/throughput.py", "Nope", "--out", out)
    assert result.returncode == 2 and "no Nope/train.py" in result.stderr


def test_readme_results_come_from_the_metrics_files():
    result = run_script("funmnist.readme", "--check")
    assert result.returncode == 0, result.stderr


def test_reproduce_lists_each_recorded_command_once():
    result = run_script("funmnist.reproduce", "--list", "Transfer_Learning", "GAN")
    assert result.returncode == 0, result.stderr
    # Transfer_Learning's one run writes two metrics.json files: its command is listed once
    assert result.stdout.splitlines() == ["[1/2] python Transfer_Learning/train.py", "[2/2] python GAN/train.py"]
    result = run_script("funmnist.reproduce", "--list", "Nope")
    assert result.returncode == 2 and "no committed runs in Nope/" in result.stderr


def test_runs_on_other_seeds_pool_into_a_mean_and_range(tmp_path, monkeypatch):
    from funmnist import readme

    monkeypatch.setattr(readme, "REPO_ROOT", tmp_path)

    def write(folder, seed, command, score, seconds, device="cpu A"):
        (tmp_path / folder).mkdir(parents=True)
        record = {"command": command, "seed": seed, "is": score, "seconds": seconds, "raw_generator": {"is": score - 1}}
        record |= {"fid": 10 * score, "fid_real": score / 2}  # fid / fid_real is 20 on every seed
        (tmp_path / folder / "metrics.json").write_text(json.dumps(record | {"gan": True, "device_name": device}))

    write("M/samples", 0, "python M/train.py", 8.19, 700.0)
    assert readme.load_seeds("M/samples/metrics.json")["is"] == 8.19  # one seed: the run as it is
    write("M/samples/seed2", 2, "python M/train.py --seed 2", 8.10, 600.0, device="cpu B")
    write("M/samples/seed10", 10, "python M/train.py --seed 10", 7.81, 800.0)
    m = readme.load_seeds("M/samples/metrics.json")
    assert f"{m['is']:.2f}" == "8.03 [7.81, 8.19]" and f"{m['raw_generator']['is']:.1f}" == "7.0 [6.8, 7.2]"
    assert m["seeds"] == 3 and m["seconds"] == 700.0 and m["gan"] is True
    assert f"{m['fid'] / m['fid_real']:.1f}" == "20.0 [20.0, 20.0]"  # divided seed by seed, not mean by mean
    assert m["command"] == "python M/train.py --seed {0,2,10}"  # seed 10 sorts after 2, by number
    assert m["device_name"] == "cpu A; cpu B"  # a mean time names every machine it was taken on, once
    assert readme.seeds_note(m) == ["3 seeds: mean [lowest, highest]; wall time the mean"]
    write("M/samples/seed3", 3, "python M/train.py --seed 3 --lr 1", 8.0, 600.0)
    with pytest.raises(SystemExit, match="seed3/metrics.json: not `python M/train.py` on another seed"):
        readme.load_seeds("M/samples/metrics.json")


def test_a_model_page_takes_its_own_rows_of_each_front_page_table():
    from funmnist import readme

    lines = [
        "Generators ([how](funmnist/metrics.py)):",
        "",
        "| model | fid |",
        "| --- | --- |",
        "| GAN | 14.5 |",
        "| WGAN-GP | 37.1 |",
        "",
        "Transfer learning (Fashion-MNIST):",
        "",
        "| way | 100 labels |",
        "| --- | --- |",
        "| probe | 69.27% |",
    ]
    gan = readme.page_lines("GAN", lines)
    assert gan == [
        "",
        "Generators ([how](../funmnist/metrics.py)):",
        "",
        "| model | fid |",
        "| --- | --- |",
        "| GAN | 14.5 |",
    ]
    assert readme.page_lines("Transfer_Learning", lines)[-1] == "| probe | 69.27% |"  # its caption names it
    assert readme.page_lines("WGAN", lines) == []  # not WGAN-GP's row


def test_img_src_shows_the_committed_samples_and_figures():
    result = run_script("funmnist.img_src", "--check")
    assert result.returncode == 0, result.stderr


def test_img_src_goes_stale_when_a_sample_or_a_figure_changes(monkeypatch):
    from funmnist import diagrams, img_src

    committed = json.loads(img_src.MANIFEST.read_text())
    assert img_src.manifest() == committed
    title, picture, headline = img_src.TILES[0]
    monkeypatch.setattr(img_src, "TILES", [(title, "GAN/samples/real.png", headline), *img_src.TILES[1:]])
    assert img_src.manifest()["tiles"][0]["sha256"] != committed["tiles"][0]["sha256"]
    monkeypatch.setitem(diagrams.FIGURES, "gan", {**diagrams.FIGURES["gan"], "title": "another"})
    assert img_src.manifest()["structure_figures"]["gan.png"] != committed["structure_figures"]["gan.png"]


def test_the_front_page_table_links_every_model_page():
    table = (REPO / "README.md").read_text().split("<!-- results:", 1)[1].split("<!-- end of results -->")[0]
    for script in sorted(REPO.glob("*/train.py")):
        assert f"]({script.parent.name}/README.md)" in table, script.parent.name


def test_every_structure_figure_draws_and_the_readme_shows_it(tmp_path):
    from funmnist import diagrams

    readme = (REPO / "README.md").read_text()
    for name, spec in diagrams.FIGURES.items():
        assert {end for arrow in spec["arrows"] for end in arrow} <= spec["nodes"].keys(), name
        diagrams.draw(spec, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
        assert f"(img_src/{name}.png)" in readme, name


def test_readme_generator_row_gives_cond_acc_and_the_raw_generator_together(monkeypatch):
    from funmnist import readme

    quality = {"fid": 20.0, "fid_real": 4.0, "is": 8.997, "confident": 0.95, "class_balance": 1.0, "cond_acc": 0.98}
    run = {"seconds": 60.0, "device_name": "cpu", "command": "python ACGAN/train.py", "evaluator_test_acc": 0.99}
    acgan = {**quality, **run, "raw_generator": {**quality, "fid": 30.0, "cond_acc": 0.97}}
    monkeypatch.setattr(readme, "load", lambda path: acgan if path.startswith("ACGAN/") else None)
    (row,) = readme.generator_rows()[5:]  # after the caption and the header
    # `is` to three decimals: 8.997 must not read as 9.00 against a bar of 9
    assert row.startswith("| ACGAN | 20.0 | 5.0 | 8.997 | 95.0% | 1.000 | `cond_acc` 98.00% (the evaluator")
    assert "the raw G: `fid` 30.0, `is` 8.997, `confident` 95.0%, `cond_acc` 97.00% |" in row


LONG_SMOKE = ["--limit", "256", "--batch-size", "32", "--epochs", "30", "--device", "cpu"]  # 240 steps


def start(script: str, *args) -> subprocess.Popen:
    """A script started as run_script runs it, left running."""
    env = {**os.environ, "FUNMNIST_DATA": str(DATA_ROOT)}
    command = [sys.executable, str(REPO / script), *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd="/")


def wait_for(path_glob, folder, process, seconds=300):
    deadline = time.monotonic() + seconds
    while not list(folder.glob(path_glob)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no {path_glob} in {folder}"
        time.sleep(0.05)


def test_sigterm_checkpoints_and_resume_ends_bit_identical(tmp_path):
    whole = run_script("GAN/train.py", *LONG_SMOKE, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    running = start("GAN/train.py", *LONG_SMOKE, "--out", tmp_path / "split")
    wait_for("step_*.png", tmp_path / "split", running)  # inside the training loop
    running.send_signal(signal.SIGTERM)
    _, err = running.communicate(timeout=300)
    assert running.returncode == 143, err
    assert "terminated (SIGTERM) at step" in err.strip().splitlines()[-1] and "continue with --resume" in err
    assert not (tmp_path / "split" / ".run.lock").exists()  # released at exit
    stopped_at = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < stopped_at < 240
    resumed = run_script("GAN/train.py", *LONG_SMOKE, "--out", tmp_path / "split", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 240 and a["losses"] == b["losses"]
    for name, state in a["objects"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                assert torch.equal(value, b["objects"][name][key]), (name, key)
    first = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert json.loads((tmp_path / "split" / "metrics.json").read_text())["fid"] == first["fid"]

    # --resume of the finished run trains no more and measures it again, to the same figures
    again = run_script("GAN/train.py", *LONG_SMOKE, "--out", tmp_path / "whole", "--resume")
    assert again.returncode == 0, again.stderr
    assert "the checkpoint is at step 240, the run's last: measuring it again, no training" in again.stdout
    remeasured = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert remeasured.pop("command").endswith("--resume")
    assert remeasured == {k: v for k, v in first.items() if k != "command"}


def test_a_second_run_on_a_folder_in_use_stops_naming_the_first(tmp_path):
    first = start("GAN/train.py", *LONG_SMOKE, "--epochs", "3000", "--out", tmp_path)  # stopped below
    try:
        wait_for(".run.lock", tmp_path, first)
        second = run_script("GAN/train.py", *SMALL, "--out", tmp_path)
        assert_one_line_error(second, 2, "--out", f"in use by another run (process {first.pid})")
        assert first.poll() is None  # the first run goes on
        wait_for("step_*.png", tmp_path, first)
    finally:
        first.terminate()
        first.communicate(timeout=300)
    assert first.returncode == 143
