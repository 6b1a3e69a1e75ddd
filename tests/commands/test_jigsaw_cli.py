import json

import pytest
import torch

from gumbel_sinkhorn.cli import main
from gumbel_sinkhorn.data import load_image, save_image
from gumbel_sinkhorn.tasks.jigsaw import METRICS

TINY = [
    "--dataset",
    "digits",
    "--grid",
    "2",
    "--epochs",
    "1",
    "--train-size",
    "256",
    "--test-size",
    "40",
    "--n-context",
    "1",
    "--d-model",
    "16",
    "--quiet",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    assert main(["jigsaw", "train", "--run-dir", str(path), *TINY]) == 0
    return path


def test_train_writes_a_complete_run(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"checkpoint.pt", "metrics.jsonl", "weights.pt", "curves.png", "puzzles.png"} <= names
    row = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert set(METRICS) <= set(row)


def test_resume_continues_the_run_with_its_options(run_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    resume = ["jigsaw", "train", "--run-dir", str(copy), "--resume", "--quiet"]
    assert main([*resume, "--epochs", "2"]) == 0  # the run's grid, data, model: not repeated
    assert len((copy / "metrics.jsonl").read_text().splitlines()) == 2
    assert main(resume) == 0  # the epochs given last time: nothing left to do
    assert len((copy / "metrics.jsonl").read_text().splitlines()) == 2
    args = [*resume, "--epochs", "3", "--hidden", "8", "--augment-shift", "0"]
    assert main(args) == 2  # options given that contradict the run: it says which
    error = capsys.readouterr().err
    assert "augment_shift: the run has 1, now 0; model.hidden: the run has 16, now 8" in error


def test_evaluate_prints_a_table_and_writes_json(run_dir, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    figure = tmp_path / "puzzles.png"
    assert main(["jigsaw", "evaluate", "--pretrained", str(run_dir / "weights.pt"), "--output",
                 str(out), "--figure", str(figure)]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert set(result) == set(METRICS)
    assert all(0 <= result[k] <= 1 for k in ("prop_wrong", "prop_any_wrong", "prop_exact"))
    printed = capsys.readouterr().out
    assert all(key in printed for key in METRICS) and figure.stat().st_size > 0
    assert "identical (e.g. blank) pieces swapped" in printed  # prop_any_wrong explained


def test_solve_scrambles_and_solves_an_image(run_dir, tmp_path):
    from gumbel_sinkhorn.data import load_digits

    image = tmp_path / "digit.png"
    save_image(load_digits("test")[0][0].unsqueeze(0), image)
    out = tmp_path / "solved.png"
    assert main(["jigsaw", "solve", str(image), "--pretrained", str(run_dir), "--output",
                 str(out)]) == 0  # fmt: skip
    solved = load_image(out)
    assert solved.shape == (1, 8, 8)
    scrambled = tmp_path / "solved-scrambled.png"
    assert scrambled.exists()
    again = tmp_path / "again.png"
    assert main(["jigsaw", "solve", str(scrambled), "--scrambled", "--pretrained", str(run_dir),
                 "--output", str(again)]) == 0  # fmt: skip
    assert torch.equal(load_image(again), solved)


def test_usage_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["jigsaw", "evaluate", "--pretrained", "no-such-model"]) == 2
    assert main(["jigsaw", "train", "--run-dir", str(tmp_path), "--resume", *TINY]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("gumbel-sinkhorn: error:") for e in errors)
    with pytest.raises(SystemExit) as exit_:  # no model at all: the parser says so
        main(["jigsaw", "evaluate"])
    assert exit_.value.code == 2
    assert "required: --pretrained" in capsys.readouterr().err.strip().splitlines()[-1]


def test_help_documents_every_option(capsys):
    for action in ("train", "evaluate", "solve"):
        with pytest.raises(SystemExit):
            main(["jigsaw", action, "--help"])
        text = capsys.readouterr().out
        assert "show this help" in text
        # solve needs no dataset: the model's config holds the image shape and normalisation
        assert ("--data-root" in text) == (action != "solve")
        assert ("--pretrained" in text) == (action != "train")
        assert "(default: None)" not in text  # unset options are explained, not shown as None


@pytest.mark.parametrize(
    "flags, expected, sampling",
    [
        ([], {}, {}),
        (
            [
                "--no-pool",
                "--hidden",
                "4",
                "--n-conv",
                "2",
                "--kernel",
                "3",
                "--input-power",
                "0.5",
                "--tau",
                "0.5",
                "--n-iter",
                "7",
                "--n-samples",
                "2",
            ],
            {"pool": False, "hidden": 4, "n_conv": 2, "kernel": 3, "input_power": 0.5},
            {"tau": 0.5, "n_iter": 7, "n_samples": 2},
        ),
        (["--model", "tutorial", "--no-pool", "--samples", "3"], {"pool": False}, {"n_samples": 3}),
        (["--input-power", "0"], {"input_power": None}, {}),
    ],
)
def test_every_model_option_reaches_the_model(tmp_path, flags, expected, sampling):
    from gumbel_sinkhorn import pretrained
    from gumbel_sinkhorn.configs.jigsaw import PRESETS, SAMPLING

    args = [*TINY, "--train-size", "64", "--test-size", "8", *flags]
    assert main(["jigsaw", "train", "--run-dir", str(tmp_path), *args]) == 0
    task, model, _ = pretrained.load_model(tmp_path)
    preset = "tutorial" if "tutorial" in flags else "ours"
    options = PRESETS[preset].replace(n_context=1, d_model=16, **expected)  # TINY's
    assert task.config.model == options
    assert task.config.sampling == SAMPLING[preset].replace(**sampling)
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in model.g1) == options.pool
    assert model.g1[0].in_channels == (1 if options.input_power is None else 2)


def test_init_warm_starts_from_weights_and_refuses_a_mismatch(run_dir, tmp_path):
    from gumbel_sinkhorn import pretrained

    assert (
        main(
            [
                "jigsaw",
                "train",
                "--run-dir",
                str(tmp_path / "warm"),
                *TINY,
                "--init",
                str(run_dir),
                "--lr",
                "1e-9",
            ]
        )
        == 0
    )
    before = pretrained.load_model(run_dir)[1].state_dict()
    after = pretrained.load_model(tmp_path / "warm")[1].state_dict()
    assert torch.allclose(before["g2.weight"], after["g2.weight"], atol=1e-6)
    wider = [*TINY, "--d-model", "8", "--init", str(run_dir)]
    assert main(["jigsaw", "train", "--run-dir", str(tmp_path / "bad"), *wider]) == 2


def test_init_into_more_context_layers_and_power_channels_keeps_the_scores(run_dir):
    from gumbel_sinkhorn import pretrained
    from gumbel_sinkhorn.train import warm_start

    task, start, _ = pretrained.load_model(run_dir)
    bigger = task.config.model.replace(n_context=3, input_power=0.25)
    deeper_task = type(task).from_config(task.config.replace(model=bigger))
    deeper = deeper_task.build_model()
    warm_start(deeper, deeper_task, run_dir)
    deeper.eval()
    assert deeper.n_context == 3 and start.n_context == 1
    pieces = task.puzzles(task.images.split("test")[:16]).scrambled
    torch.testing.assert_close(deeper(pieces), start.eval()(pieces))
    assert (
        main(
            [
                "jigsaw",
                "train",
                "--run-dir",
                str(run_dir.parent / "deeper"),
                *TINY,
                "--n-context",
                "2",
                "--input-power",
                "0.5",
                "--init",
                str(run_dir),
            ]
        )
        == 0
    )


def test_demo_says_plainly_when_mnist_is_missing_and_runs_on_the_embedded_digits(
    tmp_path, monkeypatch, capsys
):
    from gumbel_sinkhorn.data import mnist

    monkeypatch.delenv("GUMBEL_SINKHORN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(mnist, "MIRRORS", {"mnist": (), "fashion-mnist": ()})
    run = tmp_path / "demo"
    assert (
        main(
            [
                "jigsaw",
                "demo",
                "--run-dir",
                str(run),
                "--epochs",
                "1",
                "--train-size",
                "300",
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "MNIST is not available here" in out and "embedded" in out
    assert all(key in out for key in METRICS)
    assert (run / "puzzles.png").exists() and (run / "curves.png").exists()


@pytest.mark.parametrize(
    "flags, lr, schedule, exponent, shift",
    [
        ([], 3e-3, "cosine", 0.25, 1),
        (["--model", "tutorial"], 1e-4, "none", 1.0, 0),
        (
            [
                "--lr",
                "0.01",
                "--lr-schedule",
                "none",
                "--loss-exponent",
                "0.5",
                "--augment-shift",
                "2",
            ],
            0.01,
            "none",
            0.5,
            2,
        ),
    ],
)
def test_each_preset_trains_with_its_recipe_unless_told_otherwise(
    tmp_path, flags, lr, schedule, exponent, shift
):
    from gumbel_sinkhorn import pretrained

    args = [*TINY, "--train-size", "64", "--test-size", "8", "--epochs", "2", *flags]
    assert main(["jigsaw", "train", "--run-dir", str(tmp_path), *args]) == 0
    task = pretrained.load_model(tmp_path)[0]
    assert (task.config.loss_exponent, task.config.augment_shift) == (exponent, shift)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    second = lr / 2 if schedule == "cosine" else lr  # per-epoch cosine over 2 epochs
    assert [row["lr"] for row in rows] == pytest.approx([lr, second])


def test_device_and_precision_reach_the_training_loop(tmp_path, monkeypatch):
    from gumbel_sinkhorn import train

    seen, real_fit = {}, train.fit

    def spy(task, run_dir, config=None, **kwargs):
        seen.update(kwargs, config=config)
        return real_fit(task, run_dir, config, **kwargs)

    monkeypatch.setattr(train, "fit", spy)
    flags = ["--train-size", "64", "--test-size", "8", "--device", "cpu", "--precision", "bfloat16"]
    assert main(["jigsaw", "train", "--run-dir", str(tmp_path), *TINY, *flags]) == 0
    assert (seen["device"], seen["config"].precision) == ("cpu", "bfloat16")
