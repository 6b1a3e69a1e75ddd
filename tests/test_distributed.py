"""Distributed training: batch shards, and a real 2-process torchrun on the CPU (gloo)."""

import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import torch

from gumbel_sinkhorn import checkpoint, distributed
from gumbel_sinkhorn.train import fit
from toy import LineTask

TOY = Path(__file__).with_name("toy.py")


def test_shards_split_every_tensor_and_keep_the_structure():
    Batch = namedtuple("Batch", "pieces perm")
    batch = {"b": Batch(torch.arange(10).reshape(5, 2), torch.arange(5)), "n": 3}
    parts = [distributed.shard(batch, 5, rank, 2) for rank in range(2)]
    assert isinstance(parts[0]["b"], Batch) and parts[1]["n"] == 3
    assert torch.equal(torch.cat([p["b"].perm for p in parts]), torch.arange(5))
    assert [len(p["b"].pieces) for p in parts] == [3, 2]


def test_shards_refuse_what_they_cannot_split():
    with pytest.raises(ValueError, match="cannot be shared by 4 processes"):
        distributed.shard(torch.zeros(3), 3, 0, 4)
    with pytest.raises(ValueError, match=r"shape \(2, 4\).*shard\(batch, rank, world_size\)"):
        distributed.shard((torch.zeros(4), torch.zeros(2, 4)), 4, 0, 2)


def torchrun(*args, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               "2", *args]  # fmt: skip
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_two_processes_train_like_one(tmp_path):
    """torchrun, 2 CPU processes: each trains on half of every batch; the result is 1 process's."""
    single = fit(
        LineTask.create(), tmp_path / "one", epochs=2, lr=0.05, progress=False, device="cpu"
    ).history
    torchrun(str(TOY), str(tmp_path / "two"), "--epochs", "2")
    files = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert files == ["checkpoint.pt", "metrics.jsonl", "rank0-of-2", "rank1-of-2"]
    # 2 epochs x 10 batches x 16 items, half on each rank
    assert [(tmp_path / "two" / f"rank{r}-of-2").read_text() for r in (0, 1)] == ["160", "160"]
    one = checkpoint.load(tmp_path / "one" / "checkpoint.pt", "checkpoint")
    two = checkpoint.load(tmp_path / "two" / "checkpoint.pt", "checkpoint")
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=1e-5, atol=1e-6)
    for row1, row2 in zip(single, two["history"], strict=True):
        assert row1["loss"] == pytest.approx(row2["loss"], rel=1e-5)
        assert row1["mse"] == pytest.approx(row2["mse"], rel=1e-4)
        assert row2["items_per_s"] > 0


@pytest.mark.parametrize("device", ["gpu", "meta", "cuda:99"])
def test_devices_that_cannot_train_are_clear_errors(device, tmp_path):
    with pytest.raises(ValueError, match="device"):
        fit(LineTask.create(), tmp_path, epochs=1, lr=0.1, progress=False, device=device)


def test_the_sorting_command_under_torchrun(tmp_path):
    """``torchrun -m gumbel_sinkhorn sorting train``: NumberLists batches split; rank 0 writes."""
    options = ["--numbers", "5", "--epochs", "2", "--steps", "3", "--batch", "6", "--quiet"]
    paths = ["--run-dir", str(tmp_path / "run"), "--weights", str(tmp_path / "w.pt")]
    run = torchrun("-m", "gumbel_sinkhorn", "sorting", "train", *options, "--eval-lists", "20",
                   *paths)  # fmt: skip
    assert run.stdout.count("weights written to") == 1
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2
    assert checkpoint.load(tmp_path / "w.pt", "weights")["task"] == "sorting"
