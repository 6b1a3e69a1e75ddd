"""The one training loop: every experiment is a Task, trained and checkpointed the same way.

A Task (``tasks/jigsaw.py``, ``tasks/sorting.py``) provides ``name``, ``config()`` and
``from_config(cfg)``, ``build_model()``, ``train_batches(epoch, generator)``,
``loss(model, batch)``, ``batch_size(batch)`` and ``evaluate(model) -> dict``. :func:`fit` does
the rest: seeding, Adam, progress bar, per-epoch evaluation, ``metrics.jsonl``, atomic checkpoints
and resume.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from . import _checks, checkpoint


class Task(Protocol):
    name: str

    def config(self) -> dict: ...

    def build_model(self) -> torch.nn.Module: ...

    def train_batches(self, epoch: int, generator: torch.Generator): ...

    def loss(self, model: torch.nn.Module, batch) -> torch.Tensor: ...

    def batch_size(self, batch) -> int: ...

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]: ...


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch: every epoch's randomness depends only on ``(seed, epoch)``."""
    return (seed * 1_000_003 + epoch) % 2**63


def to_device(batch, device: torch.device):
    """Move every tensor in a (nested) tuple / list / dict batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _lr_factor(schedule: str | None, epochs: int):
    if schedule is None:
        return lambda epoch: 1.0
    if schedule == "cosine":
        return lambda epoch: 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    raise ValueError(f"lr_schedule must be None or 'cosine', got {schedule!r}")


def _check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"run folder {run_dir} is not writable: {err.strerror}") from err


def _resume_state(path: Path, task: Task) -> dict[str, Any]:
    state = checkpoint.load(path, "checkpoint")
    if state["task"] != task.name or state["config"] != task.config():
        raise ValueError(
            f"{path} was written for another experiment ({state['task']}, {state['config']}); "
            f"resume with the same options or use a new run folder"
        )
    return state


def fit(
    task: Task,
    run_dir: str | os.PathLike,
    *,
    epochs: int,
    lr: float,
    seed: int = 0,
    resume: bool = False,
    progress: bool = True,
    eval_every: int = 1,
    grad_clip: float | None = None,
    lr_schedule: str | None = None,
    device: str | torch.device | None = None,
) -> list[dict[str, Any]]:
    """Train ``task``'s model for ``epochs`` epochs; return one dict of numbers per epoch.

    Writes ``run_dir/checkpoint.pt`` (atomically, after every epoch) and ``run_dir/metrics.jsonl``.
    With ``resume=True`` it continues from the checkpoint; because every epoch is seeded from
    ``(seed, epoch)``, a resumed run ends with the same weights as an uninterrupted one.
    """
    epochs = _checks.count(epochs, "epochs")
    lr = _checks.positive(lr, "lr")
    eval_every = _checks.count(eval_every, "eval_every")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    run_dir = Path(run_dir)
    _check_writable(run_dir)
    ckpt_path = run_dir / "checkpoint.pt"

    torch.manual_seed(seed)
    model = task.build_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(lr_schedule, epochs))
    history: list[dict[str, Any]] = []
    if resume and ckpt_path.exists():
        state = _resume_state(ckpt_path, task)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
    elif ckpt_path.exists():
        raise ValueError(f"{run_dir} already holds a run; pass resume=True or use a new folder")

    for epoch in range(len(history), epochs):
        row = _train_epoch(task, model, optimizer, epoch, seed, device, grad_clip, progress)
        row["lr"] = scheduler.get_last_lr()[0]
        scheduler.step()
        if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
            model.eval()
            with torch.no_grad():
                row.update(task.evaluate(model))
        history.append(row)
        state = {
            "task": task.name,
            "config": task.config(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "history": history,
            "seed": seed,
        }
        checkpoint.save(ckpt_path, "checkpoint", state)
        lines = "".join(json.dumps(r) + "\n" for r in history)
        checkpoint.atomic_write(run_dir / "metrics.jsonl", lambda f, s=lines: f.write(s.encode()))
        if progress:
            tqdm.write(_summary(row))
    return history


def _train_epoch(task, model, optimizer, epoch, seed, device, grad_clip, progress):
    torch.manual_seed(epoch_seed(seed, epoch))
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    model.train()
    batches = task.train_batches(epoch, generator)
    bar = tqdm(
        batches,
        desc=f"epoch {epoch + 1}",
        disable=not progress,
        leave=False,
        total=len(batches) if hasattr(batches, "__len__") else None,
    )
    total_loss, items, steps, start = 0.0, 0, 0, time.perf_counter()
    for batch in bar:
        loss = task.loss(model, to_device(batch, device))
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss.item()} at epoch {epoch + 1}, step {steps + 1}; "
                "try a lower learning rate or a higher tau"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        total_loss += loss.item()
        items += task.batch_size(batch)
        steps += 1
        bar.set_postfix(
            loss=f"{total_loss / steps:.4g}",
            items_per_s=f"{items / (time.perf_counter() - start):.0f}",
        )
    seconds = time.perf_counter() - start
    return {
        "epoch": epoch + 1,
        "loss": total_loss / max(steps, 1),
        "seconds": seconds,
        "items_per_s": items / seconds if seconds > 0 else 0.0,
    }


def _summary(row: dict[str, Any]) -> str:
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
