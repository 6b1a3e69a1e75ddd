"""Every command given wrong arguments: one line on stderr and exit status 2, never a traceback."""

import pytest
import torch

from gumbel_sinkhorn import cli, pretrained
from gumbel_sinkhorn.data import mnist as mnist_module
from gumbel_sinkhorn.data import save_image
from gumbel_sinkhorn.tasks.jigsaw import JigsawTask

TRAIN = ["jigsaw", "train", "--dataset", "digits", "--quiet", "--run-dir", "{tmp}/run"]
SORT = ["sorting", "train", "--quiet", "--run-dir", "{tmp}/run"]
FIGURE = ["sorting", "figure", "--pretrained", "sort-5", "--output"]

CASES = {
    "demo: negative size": (["demo", "--n", "-1"], "--n"),
    "demo: empty matrix": (["demo", "--n", "0"], "--n"),
    "unknown pretrained name": (["jigsaw", "evaluate", "--pretrained", "nope"], "shipped"),
    "not a weights file": (["jigsaw", "evaluate", "--run", "{tmp}/note.png"], "not a readable"),
    "grid larger than the image": ([*TRAIN, "--grid", "100"], "pieces of at least"),
    "negative grid": ([*TRAIN, "--grid", "-3"], "--grid must be an integer >= 2"),
    "negative batch size": ([*TRAIN, "--batch-size", "-1"], "--batch-size must be an integer >= 1"),
    "zero epochs": ([*TRAIN, "--epochs", "0"], "--epochs must be an integer >= 1"),
    "negative train size": ([*TRAIN, "--train-size", "-5"], "--train-size must be an integer"),
    "negative learning rate": ([*TRAIN, "--lr", "-1"], "lr must be"),
    "zero temperature": ([*TRAIN, "--tau", "0"], "tau must be"),
    "zero hidden channels": ([*TRAIN, "--hidden", "0"], "--hidden must be an integer >= 1"),
    "heads that do not divide": ([*TRAIN, "--d-model", "30"], "multiple of --n-heads=4"),
    "missing dataset folder": ([*TRAIN, "--dataset", "{tmp}/none"], "dataset must be one of"),
    "run folder under a file": ([*TRAIN[:-1], "{tmp}/note.png/run"], "not writable"),
    "resume without a run": ([*TRAIN, "--resume"], "no checkpoint.pt"),
    "missing image": (
        ["jigsaw", "solve", "{tmp}/none.png", "--run", "{tmp}/w.pt"],
        "none.png does not exist",
    ),
    "non-image file": (["jigsaw", "solve", "{tmp}/note.png", "--run", "{tmp}/w.pt"], "Pillow"),
    "folder with one image": ([*TRAIN, "--dataset", "{tmp}/one"], "holds 1 image file, none left"),
    "sorting: lists of one number": ([*SORT, "--n", "1"], "--numbers (numbers per list) must"),
    "sorting: negative batch size": (
        [*SORT, "--batch-size", "-4"],
        "--batch-size must be an integer >= 1",
    ),
    "sorting: negative batch (old flag)": (
        [*SORT, "--batch", "-4"],
        "--batch-size must be an integer >= 1",
    ),
    "sorting: empty range": ([*SORT, "--low", "1", "--high", "0"], "needs --low < --high"),
    "sorting: infinite range": ([*SORT, "--high", "inf"], "finite"),
    "sorting: no such device": ([*SORT, "--device", "gpu"], "device must be"),
    "sorting: weights under a file": ([*SORT, "--weights", "{tmp}/note.png/w.pt"], "not writable"),
    "sorting: a jigsaw model": (["sorting", "evaluate", "--pretrained", "{tmp}/w.pt"], "jigsaw"),
    "sorting: negative std": (
        [
            "sorting",
            "evaluate",
            "--pretrained",
            "sort-5",
            "--distribution",
            "normal",
            "--std",
            "-1",
        ],
        "std > 0",
    ),
    "demo: run folder under a file": (
        ["jigsaw", "demo", "--run-dir", "{tmp}/note.png/d"],
        "not writable",
    ),
    "figure under a file": ([*FIGURE, "{tmp}/note.png/f.png"], "not writable"),
    "figure: unknown format": ([*FIGURE, "{tmp}/f.txt"], "expected a .png file name"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "note.png").write_text("not an image")
    (tmp / "one").mkdir()
    save_image(torch.zeros(1, 28, 28, dtype=torch.uint8), tmp / "one" / "digit.png")
    task = JigsawTask.create(dataset="digits", grid=2, train_size=64, test_size=16)
    pretrained.save_weights(tmp / "w.pt", task, task.build_model())
    return tmp


def run(argv, tmp, capsys):
    status = cli.main([arg.format(tmp=tmp) for arg in argv])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gumbel-sinkhorn: error: "), err
    return status, err


@pytest.mark.parametrize("argv, expected", CASES.values(), ids=CASES)
def test_wrong_arguments_give_one_line_and_status_2(argv, expected, files, capsys):
    status, err = run(argv, files, capsys)
    assert status == 2 and expected in err
    assert not (files / "run").exists()  # nothing half-made is left behind


def test_a_decompression_bomb_is_one_line(files, capsys, monkeypatch):
    from PIL import Image

    # a real bomb (a 60-byte PNG claiming 900 megapixels): tests/data/test_images.py
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    save_image(torch.zeros(1, 28, 28, dtype=torch.uint8), files / "big.png")
    status, err = run(["jigsaw", "solve", "{tmp}/big.png", "--run", "{tmp}/w.pt"], files, capsys)
    assert status == 2 and "too large to decode safely" in err


# Refused by the parser itself (a required option, a value of the wrong form): argparse's usage
# line, then one error line naming the option; exit status 2 and no traceback.
PARSER_CASES = {
    "no model given": (["jigsaw", "evaluate"], "required: --pretrained"),
    "sorting: zero lists": (
        ["sorting", "evaluate", "--pretrained", "sort-5", "--n-lists", "0"],
        "argument --n-lists: expected an integer >= 1, got '0'",
    ),
}


@pytest.mark.parametrize("argv, expected", PARSER_CASES.values(), ids=PARSER_CASES)
def test_arguments_the_parser_refuses_give_usage_and_status_2(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: gumbel-sinkhorn") and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("gumbel-sinkhorn ") and ": error: " in last and expected in last


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_corrupt_data_files_are_one_line_and_never_cached(tmp_path, capsys, private_cache):
    (tmp_path / "root" / "mnist").mkdir(parents=True)
    for name in mnist_module._MD5["mnist"]:
        (tmp_path / "root" / "mnist" / name).write_bytes(b"\x1f\x8b not really gzip")
    argv = ["jigsaw", "train", "--data-root", "{tmp}/root", "--run-dir", "{tmp}/run"]
    status, err = run(argv, tmp_path, capsys)
    assert status == 2 and "does not match the published checksum" in err
    assert not private_cache.exists() and not (tmp_path / "run").exists()


def test_missing_data_offline_is_one_line(tmp_path, capsys, monkeypatch, private_cache):
    monkeypatch.setattr(mnist_module, "MIRRORS", {"mnist": ("http://127.0.0.1:9/",)})
    argv = ["jigsaw", "train", "--data-root", "{tmp}/empty", "--run-dir", "{tmp}/run"]
    status, err = run(argv, tmp_path, capsys)
    assert status == 2 and "could not be downloaded" in err
    assert not list(private_cache.rglob("*.gz"))  # no half-downloaded file
