"""Faults injected for real: runs killed with SIGKILL, interrupted with SIGINT, full disks."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gumbel_sinkhorn import checkpoint, cli, train
from gumbel_sinkhorn.commands import demo
from gumbel_sinkhorn.train import fit
from toy import LineTask

TOY = Path(__file__).with_name("toy.py")
OPTIONS = {"epochs": 3, "lr": 0.05, "seed": 0}


def _default_sigint():
    """In the child before exec: SIGINT handled by default. A shell starts background jobs with
    SIGINT ignored, and fit (rightly) leaves an ignored signal ignored, so a suite run in the
    background would otherwise test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_toy(run_dir, pause_folder, *args, pause_at=None):
    env = dict(os.environ)
    if pause_at:
        env["TOY_PAUSE"] = f"{pause_at[0]},{pause_at[1]},{pause_folder}"
    return subprocess.Popen(
        [sys.executable, str(TOY), str(run_dir), "--epochs", "3", *args],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {path.name}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {path.name} after {timeout} s")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: the toy trained without interruption, in this process."""
    run_dir = tmp_path_factory.mktemp("reference")
    history = fit(LineTask.create(), run_dir, progress=False, device="cpu", **OPTIONS).history
    return history, checkpoint.load(run_dir / "checkpoint.pt", "checkpoint")["model"]


def assert_same_run(run_dir, uninterrupted):
    history, weights = uninterrupted
    state = checkpoint.load(run_dir / "checkpoint.pt", "checkpoint")
    for key, value in weights.items():
        assert torch.equal(value, state["model"][key]), key
    timing = {"seconds", "items_per_s"}
    resumed = [{k: v for k, v in row.items() if k not in timing} for row in state["history"]]
    assert resumed == [{k: v for k, v in row.items() if k not in timing} for row in history]
    assert state["position"] is None


def test_sigkill_mid_epoch_while_saving_then_resume_ends_with_the_same_weights(
    tmp_path, uninterrupted, monkeypatch
):
    run_dir = tmp_path / "run"
    # Checkpoints every 3 steps (10 per epoch): the 6th write is epoch 2, step 6; the process is
    # killed halfway through writing it.
    monkeypatch.setenv("TOY_PAUSE_SAVE", f"6,{tmp_path}")
    run = start_toy(run_dir, tmp_path, "--save-every", "3")
    wait_for(tmp_path / "paused", run)
    run.send_signal(signal.SIGKILL)
    assert run.wait(60) == -signal.SIGKILL
    state = checkpoint.load(run_dir / "checkpoint.pt", "checkpoint")  # the previous one, intact
    assert len(state["history"]) == 1 and state["position"]["step"] == 3
    [half_written] = run_dir.glob(".checkpoint.pt.*.tmp")

    monkeypatch.delenv("TOY_PAUSE_SAVE")
    fit(LineTask.create(), run_dir, resume=True, progress=False, device="cpu", **OPTIONS)
    assert_same_run(run_dir, uninterrupted)
    assert not half_written.exists()


def test_sigint_mid_epoch_saves_where_it_stopped_and_resume_matches(
    tmp_path, uninterrupted, monkeypatch
):
    run_dir = tmp_path / "run"
    run = start_toy(run_dir, tmp_path, pause_at=(1, 4))
    wait_for(tmp_path / "paused", run)
    run.send_signal(signal.SIGINT)
    (tmp_path / "go").touch()
    assert run.wait(60) == 130
    assert "stopped by SIGINT at epoch 2, step 5" in run.stderr.read()
    state = checkpoint.load(run_dir / "checkpoint.pt", "checkpoint")
    assert len(state["history"]) == 1 and state["position"]["step"] == 5
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1

    monkeypatch.delenv("TOY_PAUSE", raising=False)
    fit(LineTask.create(), run_dir, resume=True, progress=False, device="cpu", **OPTIONS)
    assert_same_run(run_dir, uninterrupted)


class FullDisk:
    """A file on a disk that fills up after ``room`` bytes."""

    def __init__(self, file, room):
        self.file, self.room = file, room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def fill_disk_after(monkeypatch, room):
    real_fdopen = os.fdopen
    monkeypatch.setattr(
        checkpoint.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode), room)
    )


def test_a_full_disk_stops_training_at_the_failing_write_and_keeps_the_last_checkpoint(
    tmp_path, monkeypatch
):
    fit(LineTask.create(), tmp_path, epochs=1, lr=0.05, progress=False, device="cpu")
    before = (tmp_path / "checkpoint.pt").read_bytes()
    metrics = (tmp_path / "metrics.jsonl").read_bytes()
    # room for the metrics.jsonl that a resume rewrites first (a line, well under 1000 bytes),
    # not for a checkpoint (a few kB)
    assert len(metrics) < 1000 < len(before)
    fill_disk_after(monkeypatch, room=1000)
    with pytest.raises(OSError, match=r"could not write .*checkpoint.pt \(No space left"):
        fit(
            LineTask.create(), tmp_path, epochs=2, lr=0.05, resume=True, progress=False,
            device="cpu",
        )  # fmt: skip
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert (tmp_path / "metrics.jsonl").read_bytes() == metrics
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.jsonl"]


def test_the_command_reports_a_full_disk_in_one_line(monkeypatch, capsys):
    def train_on_a_full_disk(args):
        raise OSError(errno.ENOSPC, "could not write run/checkpoint.pt (No space left on device)")

    monkeypatch.setattr(demo, "main", train_on_a_full_disk)
    assert cli.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err


def test_resuming_with_another_seed_is_refused(tmp_path):
    fit(LineTask.create(), tmp_path, epochs=1, lr=0.05, seed=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match="trained with seed 1"):
        fit(LineTask.create(), tmp_path, epochs=2, lr=0.05, seed=2, resume=True, progress=False)


def test_a_checkpoint_from_a_longer_epoch_is_refused(tmp_path):
    fit(LineTask.create(), tmp_path, epochs=1, lr=0.05, progress=False, device="cpu")
    state = checkpoint.load(tmp_path / "checkpoint.pt", "checkpoint")
    position = {"epoch": 0, "step": 12, "loss_sum": 0.0, "items": 0, "seconds": 0.0}
    state["history"], state["position"] = [], position
    state = {k: v for k, v in state.items() if k not in ("format", "version")}
    checkpoint.save(tmp_path / "checkpoint.pt", "checkpoint", state)
    with pytest.raises(ValueError, match="has 10 batches"):
        fit(
            LineTask.create(), tmp_path, epochs=1, lr=0.05, resume=True, progress=False,
            device="cpu",
        )  # fmt: skip


def test_signals_are_restored_after_fit(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    fit(LineTask.create(batches=1), tmp_path, epochs=1, lr=0.05, progress=False, device="cpu")
    assert signal.getsignal(signal.SIGINT) is before
    assert train.derive_seed(0, 1, "loss", 0) != train.derive_seed(0, 1, "loss", 1)


class SignalledTask(LineTask):
    """Sends ``signum`` to its own process during step 3 of epoch 1 (0-based)."""

    name = "line-signalled"

    def __init__(self, config, *, signum=None):
        super().__init__(config)
        self.signum = signum

    def loss(self, model, batch):
        if self.signum and (self.epoch, self.step) == (1, 3):
            os.kill(os.getpid(), self.signum)
        return super().loss(model, batch)


def test_sigterm_saves_and_stops_like_ctrl_c(tmp_path, uninterrupted):
    task = SignalledTask.from_config({}, signum=signal.SIGTERM)
    with pytest.raises(train.TrainingInterrupted, match="SIGTERM at epoch 2, step 4"):
        fit(task, tmp_path, progress=False, device="cpu", **OPTIONS)
    assert checkpoint.load(tmp_path / "checkpoint.pt", "checkpoint")["position"]["step"] == 4
    fit(SignalledTask.create(), tmp_path, resume=True, progress=False, device="cpu", **OPTIONS)
    assert_same_run(tmp_path, uninterrupted)
