import json

import pytest
import torch

from gumbel_sinkhorn import cli, pretrained
from gumbel_sinkhorn.data.numbers import Distribution, sample_lists


def run(capsys, *args):
    code = cli.main(["sorting", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A run trained through the CLI (tiny), and its weights file."""
    folder = tmp_path_factory.mktemp("cli")
    args = [
        "sorting",
        "train",
        "--n",
        "5",
        "--epochs",
        "2",
        "--steps",
        "20",
        "--eval-lists",
        "50",
        "--run-dir",
        folder / "run",
        "--weights",
        folder / "sort-5.pt",
        "--quiet",
    ]
    assert cli.main([str(a) for a in args]) == 0
    return folder


def test_train_writes_checkpoint_metrics_and_weights(weights):
    assert (weights / "run" / "checkpoint.pt").is_file()
    rows = [
        json.loads(line)
        for line in (weights / "run" / "metrics.jsonl").read_text().split("\n")
        if line
    ]
    assert [r["epoch"] for r in rows] == [1, 2] and "prop_any_wrong" in rows[-1]
    task, model, metrics = pretrained.load_model(weights / "sort-5.pt")
    assert task.name == "sorting" and task.config.n == 5 and metrics["train_seconds"] > 0
    assert task.config.steps_per_epoch == 20 and task.config.eval_lists == 50  # --steps: alias


def test_train_resume_continues_with_the_runs_options(weights, capsys):
    code, out, _ = run(
        capsys, "train", "--epochs", 3, "--run-dir", weights / "run", "--resume", "--quiet"
    )
    assert code == 0 and "trained 3 epochs" in out
    assert len((weights / "run" / "metrics.jsonl").read_text().splitlines()) == 3


def test_train_refuses_to_overwrite_a_run(weights, capsys):
    code, _, err = run(capsys, "train", "--n", 5, "--run-dir", weights / "run", "--quiet")
    assert code == 2 and "already holds a run" in err


@pytest.mark.parametrize("name", [f"sort-{n}" for n in (5, 10, 15, 80, 100, 120)])
def test_evaluate_shipped_weights(name, tmp_path, capsys):
    """Shipped models on a shifted range: the JSON holds the metrics of a direct computation."""
    out_file = tmp_path / "m.json"
    code, out, _ = run(
        capsys,
        "evaluate",
        "--pretrained",
        name,
        "--n-lists",
        100,
        "--low",
        0,
        "--high",
        10,
        "--seed",
        5,
        "--output",
        out_file,
    )
    assert code == 0 and "prop_any_wrong" in out
    report = json.loads(out_file.read_text())
    task, model, _ = pretrained.load_model(name)
    lists = sample_lists(
        100, task.config.n, Distribution(low=0, high=10), generator=torch.Generator().manual_seed(5)
    )
    with torch.no_grad():
        scores = model(lists.random)
    from gumbel_sinkhorn import kendall_tau, matching

    predicted = matching(scores)
    true = lists.random.argsort(-1).argsort(-1)
    assert report["prop_wrong"] == pytest.approx((predicted != true).double().mean().item())
    assert report["prop_any_wrong"] == pytest.approx(
        (predicted != true).any(-1).double().mean().item()
    )
    assert report["kendall_tau"] == pytest.approx(kendall_tau(predicted, true).mean().item())
    assert report["n"] == task.config.n and report["n_lists"] == 100
    assert report["prop_any_wrong"] <= 0.05


def test_evaluate_a_run_folder_on_normal_lists(weights, capsys, tmp_path):
    code, out, _ = run(
        capsys,
        "evaluate",
        "--pretrained",
        weights / "run",
        "--n-lists",
        20,
        "--distribution",
        "normal",
        "--mean",
        3,
        "--std",
        100,
    )
    assert code == 0 and "N(3, 100^2)" in out


def test_figure(weights, tmp_path, capsys):
    png = tmp_path / "sorting.png"
    code, out, _ = run(capsys, "figure", "--pretrained", weights / "sort-5.pt", "--output", png)
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--n", 1, "--run-dir", "{tmp}/r"],
            "--numbers (numbers per list) must be an integer >= 2",
        ),
        (
            ["train", "--n", 5, "--epochs", 0, "--run-dir", "{tmp}/r"],
            "--epochs must be an integer >= 1",
        ),
        (["train", "--low", 1, "--high", 1, "--run-dir", "{tmp}/r"], "needs --low < --high"),
        (["train", "--batch", -2, "--run-dir", "{tmp}/r"], "--batch-size must be an integer >= 1"),
        (
            ["train", "--batch-size", -2, "--run-dir", "{tmp}/r"],
            "--batch-size must be an integer >= 1",
        ),
        (
            ["evaluate", "--pretrained", "{weights}", "--low", 2, "--high", 1],
            "needs --low < --high",
        ),
        (
            ["evaluate", "--pretrained", "{weights}", "--distribution", "normal", "--std", 0],
            "std > 0",
        ),
        (["evaluate", "--pretrained", "no-such-model"], "neither a file, a run folder nor"),
    ],
)
def test_bad_arguments_one_line_exit_2(args, message, weights, tmp_path, capsys):
    args = [str(a).format(tmp=tmp_path, weights=weights / "sort-5.pt") for a in args]
    code, _, err = run(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and message in err


def test_a_list_count_the_parser_refuses_is_usage_and_exit_2(weights, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["sorting", "evaluate", "--pretrained", str(weights / "sort-5.pt"), "--n-lists",
                  "-5"])  # fmt: skip
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert (
        err.strip()
        .splitlines()[-1]
        .endswith("error: argument --n-lists: expected an integer >= 1, got '-5'")
    )


def test_old_and_new_flag_spellings_set_the_same_options():
    parser = cli.build_parser()
    base = ["sorting", "train", "--run-dir", "r"]
    old = parser.parse_args([*base, "--n", "7", "--batch", "3", "--samples", "2", "--steps", "9"])
    new = parser.parse_args([*base, "--numbers", "7", "--batch-size", "3", "--n-samples", "2",
                             "--steps-per-epoch", "9"])  # fmt: skip
    assert vars(old) == vars(new)
    assert (new.n, new.batch_size, getattr(new, "sampling.n_samples"), new.steps_per_epoch) == (
        7,
        3,
        2,
        9,
    )
    unset = parser.parse_args(base)  # not given: None, the configuration supplies the default
    assert unset.n is unset.batch_size is getattr(unset, "sampling.tau") is None


def test_help_documents_every_option(capsys):
    import argparse

    commands = next(
        a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    sorting = commands.choices["sorting"]
    actions = next(a for a in sorting._actions if isinstance(a, argparse._SubParsersAction))
    assert set(actions.choices) == {"train", "evaluate", "figure"}
    for name, parser in actions.choices.items():
        for option in parser._actions:
            assert option.help, f"sorting {name} {option.option_strings}: no help"
        with pytest.raises(SystemExit):
            cli.main(["sorting", name, "--help"])
        assert "--pretrained" in capsys.readouterr().out or name == "train"
