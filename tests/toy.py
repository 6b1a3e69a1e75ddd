"""A toy Task for the training-loop tests, and a script that trains it (also under torchrun).

    python tests/toy.py RUN_DIR --epochs 3 [--seed S] [--resume] [--save-every N]
    torchrun --standalone --nproc-per-node 2 tests/toy.py RUN_DIR ...

Under torchrun each rank finally writes RUN_DIR/rankR-of-W: the number of items it trained on.

With ``TOY_PAUSE=EPOCH,STEP,FOLDER`` in the environment, the step STEP (0-based) of epoch EPOCH
creates FOLDER/paused and then waits until FOLDER/go exists: a test kills or interrupts the process
there, mid-epoch, at a known step. With ``TOY_PAUSE_SAVE=K,FOLDER`` the K-th write of checkpoint.pt
writes half of its bytes, then pauses the same way.
"""

import argparse
import dataclasses
import io
import itertools
import os
import sys
import time
from pathlib import Path

import torch

from gumbel_sinkhorn.configs import Config, check, count
from gumbel_sinkhorn.tasks import Task


@dataclasses.dataclass(frozen=True)
class LineConfig(Config):
    """The toy's options: ``batches`` per epoch of ``batch_size`` points each."""

    batches: int = 10
    batch_size: int = 16

    def __post_init__(self):
        check(self, batches=count, batch_size=count)


class LineTask(Task):
    """A toy task: fit y = 3x - 1 with fresh noisy data every epoch.

    Defined on the task contract, it joins the registry (``task_class("line")``) by being defined:
    saved runs rebuild it with :func:`gumbel_sinkhorn.pretrained.load_model`.
    """

    name = "line"
    Config = LineConfig
    metrics = ("mse",)

    def __init__(self, config: LineConfig):
        super().__init__(config)
        self.seen = 0  # items that reached loss() in this process

    def build_model(self):
        return torch.nn.Linear(1, 1)

    def train_batches(self, epoch, generator):
        self.epoch = epoch
        for step in range(self.config.batches):
            self.step = step
            x = torch.rand(self.config.batch_size, 1, generator=generator)
            # The noise comes from the global RNG, which fit seeds per batch.
            yield x, 3 * x - 1 + 0.01 * torch.randn(self.config.batch_size, 1)

    def loss(self, model, batch):
        _pause_here(self.epoch, self.step)
        x, y = batch
        self.seen += len(x)
        return torch.nn.functional.mse_loss(model(x), y)

    def evaluate(self, model):
        x = torch.linspace(0, 1, 11).unsqueeze(1)
        return {"mse": torch.nn.functional.mse_loss(model(x), 3 * x - 1).item()}


def _pause_here(epoch, step):
    pause = os.environ.get("TOY_PAUSE")
    if not pause:
        return
    at_epoch, at_step, folder = pause.split(",", 2)
    if (epoch, step) == (int(at_epoch), int(at_step)):
        _wait(Path(folder))


def _pause_in_a_checkpoint_write(spec):
    from gumbel_sinkhorn import checkpoint

    at, folder = spec.split(",", 1)
    real, calls = checkpoint.atomic_write, itertools.count(1)

    def atomic_write(path, write):
        if Path(path).name != "checkpoint.pt" or next(calls) != int(at):
            return real(path, write)

        def half_then_wait(file):
            whole = io.BytesIO()
            write(whole)
            file.write(whole.getvalue()[: len(whole.getvalue()) // 2])
            file.flush()
            _wait(Path(folder))

        return real(path, half_then_wait)

    checkpoint.atomic_write = atomic_write


def _wait(folder: Path):
    (folder / "paused").touch()
    deadline = time.monotonic() + 60
    while not (folder / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def _require_ddp_freed_before_the_group_is():
    """Under torchrun: fail if a DistributedDataParallel is alive when fit destroys the group.

    Freed after the group, its reducer can hang in gloo's destructor, depending on timing (seen:
    7 of 20 runs); this check fails every time instead.
    """
    import gc

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    real = dist.destroy_process_group

    def destroy(*args, **kwargs):
        if any(isinstance(o, DistributedDataParallel) for o in gc.get_objects()):
            raise RuntimeError("a DistributedDataParallel outlived its process group")
        return real(*args, **kwargs)

    dist.destroy_process_group = destroy


def main(argv=None):
    from gumbel_sinkhorn.train import fit

    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--save-every", type=int)
    args = parser.parse_args(argv)
    if os.environ.get("TOY_PAUSE_SAVE"):
        _pause_in_a_checkpoint_write(os.environ["TOY_PAUSE_SAVE"])
    if "RANK" in os.environ:
        _require_ddp_freed_before_the_group_is()
    task = LineTask.create()
    try:
        fit(
            task,
            args.run_dir,
            epochs=args.epochs,
            lr=args.lr,
            seed=args.seed,
            resume=args.resume,
            save_every=args.save_every,
            progress=False,
            device="cpu",
        )
    except KeyboardInterrupt as err:
        print(f"interrupted: {err}", file=sys.stderr)
        return 130
    if "RANK" in os.environ:  # under torchrun: what this rank trained on
        report = Path(args.run_dir) / f"rank{os.environ['RANK']}-of-{os.environ['WORLD_SIZE']}"
        report.write_text(str(task.seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
