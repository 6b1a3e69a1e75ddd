"""What a new user hits on the command line (issue 14): one line and exit 2 for what they can fix,
a traceback for bugs, nothing half-done left behind, help at once."""

import json
import subprocess
import sys
import time

import pytest
import torch

from gumbel_sinkhorn import cli, errors
from gumbel_sinkhorn.checkpoint import read_weights, save
from gumbel_sinkhorn.runs import RunFolder

SORT = ["sorting", "train", "--quiet", "--n", "4", "--steps", "3", "--eval-lists", "20"]


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_help_answers_without_loading_torch():
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from gumbel_sinkhorn import cli;"
         "cli.build_parser().format_help(); print('torch' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "False"
    assert time.perf_counter() - start < 30  # generous: a sanity bound, not a timing claim


def test_a_bug_keeps_its_traceback(monkeypatch):
    from gumbel_sinkhorn.commands import demo

    def broken(args):
        raise ValueError("an internal bug, not the user's doing")

    monkeypatch.setattr(demo, "main", broken)
    with pytest.raises(ValueError, match="internal bug"):
        cli.main(["demo"])


def test_debug_shows_the_traceback_of_a_user_error():
    with pytest.raises(errors.UserError):
        cli.main(["--debug", "demo", "--n", "0"])


def test_errors_name_the_flags_the_user_typed(capsys, tmp_path):
    code, err = run_cli(capsys, *SORT, "--run-dir", tmp_path / "r", "--eval-lists", "0")
    assert code == 2 and "--eval-lists" in err and "eval_lists" not in err
    code, err = run_cli(capsys, "jigsaw", "train", "--dataset", "digits", "--run-dir",
                        tmp_path / "j", "--test-size", "0")  # fmt: skip
    assert code == 2 and "--test-size" in err and "test_size" not in err


@pytest.mark.parametrize("value, ok", [("0", False), ("2", False), ("0.25", True), ("1", True)])
def test_loss_exponent_check_agrees_with_its_help(capsys, tmp_path, value, ok):
    from gumbel_sinkhorn.configs.jigsaw import JigsawConfig

    if ok:
        assert JigsawConfig(dataset="digits", loss_exponent=float(value)).loss_exponent > 0
    else:
        with pytest.raises(errors.InvalidValueError, match=r"in \(0, 1\]"):
            JigsawConfig(dataset="digits", loss_exponent=float(value))
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["jigsaw"]
    assert "(0, 1]" in help_text._subparsers._group_actions[0].choices["train"].format_help()


def test_refused_runs_leave_no_empty_folder(capsys, tmp_path):
    code, _ = run_cli(capsys, "jigsaw", "demo", "--epochs", "0", "--run-dir", tmp_path / "d")
    assert code == 2 and not (tmp_path / "d").exists()
    code, _ = run_cli(capsys, *SORT, "--run-dir", tmp_path / "s", "--lr", "-1")
    assert code == 2 and not (tmp_path / "s").exists()


def test_a_truncated_mnist_file_is_refused_before_the_run_folder(capsys, tmp_path):
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):  # fmt: skip
        (root / "mnist" / name).write_bytes(b"\x1f\x8b truncated")
    code, err = run_cli(capsys, "jigsaw", "train", "--data-root", root, "--run-dir",
                        tmp_path / "run", "--quiet")  # fmt: skip
    assert code == 2 and not (tmp_path / "run").exists(), err


def test_output_paths_are_checked_before_the_work(capsys, tmp_path, monkeypatch):
    from gumbel_sinkhorn import pretrained

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr(pretrained, "load_model", never)
    code, err = run_cli(capsys, "jigsaw", "evaluate", "--pretrained", "mnist-2x2", "--figure",
                        tmp_path / "f.txt")  # fmt: skip
    assert code == 2 and "f.txt" in err and ".png" in err
    (tmp_path / "file").write_text("x")
    code, err = run_cli(capsys, "sorting", "evaluate", "--pretrained", "sort-5", "--output",
                        tmp_path / "file" / "x.json")  # fmt: skip
    assert code == 2 and "not writable" in err and "previous file" not in err


def test_init_from_a_model_of_another_kind_is_one_line(capsys, tmp_path):
    code, err = run_cli(capsys, "jigsaw", "train", "--dataset", "digits", "--grid", "2",
                        "--run-dir", tmp_path / "r", "--init", "sort-5", "--epochs", "1",
                        "--quiet")  # fmt: skip
    assert code == 2 and "sorting model, not a jigsaw one" in err


def test_weights_with_foreign_keys_are_one_line(capsys, tmp_path):
    payload = read_weights("sort-5")
    state = {("renamed." + k): v for k, v in payload["state_dict"].items()}
    bad = tmp_path / "bad.pt"
    save(bad, "weights", {**payload, "state_dict": state})
    code, err = run_cli(capsys, "sorting", "evaluate", "--pretrained", bad, "--n-lists", "5")
    assert code == 2 and "do not fit" in err


def test_resume_restores_the_metrics_of_a_run_killed_before_writing_them(capsys, tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run_cli(capsys, *SORT, "--run-dir", run.path, "--epochs", "2")[0] == 0
    lines = run.metrics.read_text().splitlines()
    run.metrics.write_text(lines[0] + "\n")  # as if SIGKILLed between checkpoint and metrics
    assert run_cli(capsys, *SORT, "--run-dir", run.path, "--epochs", "2", "--resume")[0] == 0
    assert [json.loads(line)["epoch"] for line in run.metrics.read_text().splitlines()] == [1, 2]


def test_progress_is_a_line_per_epoch_when_not_a_terminal(capsys, tmp_path):
    from gumbel_sinkhorn.tasks.sorting import SortingTask
    from gumbel_sinkhorn.train import fit

    fit(SortingTask.create(n=4, steps_per_epoch=20, eval_lists=10), tmp_path, epochs=3, lr=0.1)
    captured = capsys.readouterr()
    assert "it/s" not in captured.err  # no progress bar into a log
    assert [line.split()[:2] for line in captured.out.splitlines()] == [
        ["epoch", "1"],
        ["epoch", "2"],
        ["epoch", "3"],
    ]


def test_resume_keeps_the_run_options_and_given_flags_win(tmp_path):
    run = tmp_path / "run"
    assert cli.main([*SORT, "--run-dir", str(run), "--epochs", "1", "--lr", "0.05"]) == 0
    assert cli.main([*SORT[:2], "--quiet", "--run-dir", str(run), "--epochs", "2",
                     "--resume"]) == 0  # fmt: skip
    state = torch.load(RunFolder(run).checkpoint, weights_only=True)
    assert state["config"]["n"] == 4 and state["fit"]["lr"] == 0.05 and state["fit"]["epochs"] == 2


def test_solve_takes_files_and_folders_in_one_call(capsys, tmp_path):
    from gumbel_sinkhorn.data import load_dataset, load_image, save_image

    digits = load_dataset("digits", "test", size=16).images[:3]
    folder = tmp_path / "in"
    folder.mkdir()
    for i, image in enumerate(digits):
        save_image(image.float() / 255, folder / f"d{i}.png")
    extra = tmp_path / "extra.png"
    save_image(digits[0].float() / 255, extra)
    out = tmp_path / "out"
    code, err = run_cli(capsys, "jigsaw", "solve", folder, extra, "--pretrained", "mnist-2x2",
                        "--output", out)  # fmt: skip
    assert code == 0, err
    solved = sorted(p.name for p in out.glob("*-solved.png"))
    assert solved == ["d0-solved.png", "d1-solved.png", "d2-solved.png", "extra-solved.png"]
    assert load_image(out / "d1-solved.png").shape == digits[1].shape  # the size it was given
