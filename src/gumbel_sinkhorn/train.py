"""The one training loop: every experiment is a Task, trained and checkpointed the same way.

A Task (``tasks/jigsaw.py``, ``tasks/sorting.py``) provides ``name``, ``config()`` and
``from_config(cfg)``, ``build_model()``, ``train_batches(epoch, generator)``,
``loss(model, batch)``, ``batch_size(batch)`` and ``evaluate(model) -> dict``. :func:`fit` does
the rest: seeding, Adam, progress bar, per-epoch evaluation, ``metrics.jsonl``, atomic checkpoints,
resume (also from the middle of an epoch), Ctrl-C, and torchrun / DistributedDataParallel.

Randomness, the contract that makes runs reproducible, resumable and distributable:

- ``train_batches`` yields *global* batches and draws their randomness from ``generator`` (seeded
  from ``(seed, epoch)``; the global RNG is also seeded per batch, identically on every rank).
  Under torchrun every rank draws the same global batch and trains on its own slice of it
  (:func:`gumbel_sinkhorn.distributed.shard`; a task may define ``shard(batch, rank, world_size)``).
- ``loss`` may use the global RNG (Gumbel noise): it is seeded from ``(seed, epoch, step, rank)``.
- ``evaluate`` runs on every rank with the same seed and the same weights, so all ranks agree on
  the metrics without a collective (it is forward-only and small next to an epoch of training).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.nn.parallel import DistributedDataParallel

from . import _checks, _extras, checkpoint, distributed

try:
    from tqdm.auto import tqdm
except ImportError as err:
    raise _extras.missing("tqdm", "gumbel_sinkhorn.train (progress bars)") from err


class Task(Protocol):
    name: str

    def config(self) -> dict: ...

    def build_model(self) -> torch.nn.Module: ...

    def train_batches(self, epoch: int, generator: torch.Generator): ...

    def loss(self, model: torch.nn.Module, batch) -> torch.Tensor: ...

    def batch_size(self, batch) -> int: ...

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]: ...


# fit's precision: the dtype its forward passes autocast to (None: plain float32)
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped :func:`fit` after it saved a checkpoint that resumes."""


def derive_seed(seed: int, *parts) -> int:
    """A 63-bit seed that depends only on ``seed`` and ``parts`` (stable across runs and versions).

    >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(0, 2)
    True
    """
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of the generator that ``train_batches`` gets: a function of ``(seed, epoch)``."""
    return derive_seed(seed, epoch)


def to_device(batch, device: torch.device):
    """Move every tensor in a (nested) tuple / named tuple / list / dict batch to ``device``.

    >>> to_device({"x": [torch.zeros(2)]}, torch.device("cpu"))
    {'x': [tensor([0., 0.])]}
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        moved = [to_device(v, device) for v in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch


def adam(parameters, lr: float, device: torch.device) -> torch.optim.Adam:
    """The optimizer :func:`fit` uses: Adam, in PyTorch's single-kernel form where ``device``
    has it (CPU and CUDA): a step of the default jigsaw network (48 tensors) takes 0.3 ms on one
    CPU thread instead of 1.4.

    >>> adam([torch.zeros(3, requires_grad=True)], 1e-3, torch.device("cpu")).defaults["fused"]
    True
    """
    return torch.optim.Adam(parameters, lr=lr, fused=device.type in ("cpu", "cuda"))


def autocast(device: torch.device, precision: str):
    """The ``torch.autocast`` context of :func:`fit`'s training forward passes.

    >>> with autocast(torch.device("cpu"), "bfloat16"):
    ...     torch.nn.Linear(2, 2)(torch.ones(2)).dtype
    torch.bfloat16
    """
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype, enabled=dtype is not None)


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (elsewhere it is emulated, and slower).

    CPUs need AVX512-BF16 or AMX; CUDA GPUs compute capability 8.0 (Ampere) or later.

    >>> isinstance(native_bfloat16(torch.device("cpu")), bool)
    True
    """
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":  # private probes, missing from older torch: then no warning
        names = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        probes = [getattr(torch.cpu, name) for name in names if hasattr(torch.cpu, name)]
        return not probes or any(probe() for probe in probes)
    return True  # other backends: no way to tell, no warning


def saved_options(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``options`` that :func:`fit` kept in ``run_dir``'s checkpoint (empty if none were)."""
    state = checkpoint.load(Path(run_dir) / "checkpoint.pt", "checkpoint")
    return dict(state.get("options") or {})


def _lr_factor(schedule: str | None, epochs: int):
    if schedule is None or schedule == "none":
        return lambda epoch: 1.0
    if schedule == "cosine":
        return lambda epoch: 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    raise ValueError(f"lr_schedule must be None, 'none' or 'cosine', got {schedule!r}")


def _resume_state(path: Path, task: Task, seed: int) -> dict[str, Any]:
    state = checkpoint.load(path, "checkpoint")
    if state["task"] != task.name:
        raise ValueError(
            f"{path} was written for another experiment ({state['task']}, not {task.name}); "
            "use a new run folder"
        )
    changed = _differences(state["config"], task.config())
    if changed:
        raise ValueError(
            f"{path} was written for another experiment: {'; '.join(changed)}. Resume with the "
            "run's options or use a new run folder"
        )
    if state["seed"] != seed:
        raise ValueError(
            f"{path} was trained with seed {state['seed']}; resume it with the same seed "
            f"(got {seed}) or use a new run folder"
        )
    return state


def _differences(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """``"key: run value, now value"`` for each option that differs (nested dicts flattened)."""
    out = []
    for key in sorted(saved.keys() | now.keys(), key=str):
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: the run has {a!r}, now {b!r}")
    return out


class _StopSignals:
    """Inside ``with``: SIGINT / SIGTERM ask the loop to stop at the next step (``.received``).

    A second signal more than a second after the first interrupts at once (torchrun forwards the
    terminal's Ctrl-C to its workers, which therefore see two signals in quick succession).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: signal.Signals | None = None
        self._at = 0.0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.received is None:
            self.received, self._at = signal.Signals(signum), time.monotonic()
        elif time.monotonic() - self._at > 1.0:
            raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


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
    save_every: int | None = None,
    precision: str = "float32",
    options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train ``task``'s model for ``epochs`` epochs; return one dict of numbers per epoch.

    Writes ``run_dir/checkpoint.pt`` (atomically, after every epoch, every ``save_every`` steps if
    given, and on Ctrl-C / SIGTERM before raising :class:`TrainingInterrupted`) and
    ``run_dir/metrics.jsonl``. With ``resume=True`` it continues from the checkpoint, also from the
    middle of an epoch; a resumed run ends with the same weights as an uninterrupted one.

    Under ``torchrun --nproc-per-node K`` it trains with DistributedDataParallel: each rank trains
    on its slice of every global batch, the loss and items/s are summed over ranks, and only rank 0
    writes files and shows the progress bar. Every rank returns the same history. On GPUs the
    model's BatchNorm layers become SyncBatchNorm (statistics of the global batch); PyTorch has no
    CPU SyncBatchNorm, so on CPUs they normalise each rank's slice.

    ``precision="bfloat16"``: the training steps' forward passes run under ``torch.autocast``
    (convolutions and matrix products in bfloat16, weights and optimizer in float32; the
    Sinkhorn operator still solves in float32). Faster where the hardware has bfloat16 units
    (recent GPUs; CPUs with AVX512-BF16 or AMX); where it must be emulated (slower) ``fit``
    warns (:func:`native_bfloat16`).
    Evaluation stays in float32.

    ``options``: what launched the run (the command line's, say), kept in every checkpoint as
    given: :func:`saved_options` reads them back, so a resume can reuse them.
    """
    epochs = _checks.count(epochs, "epochs")
    lr = _checks.positive(lr, "lr")
    eval_every = _checks.count(eval_every, "eval_every")
    if save_every is not None:
        save_every = _checks.count(save_every, "save_every")
    _lr_factor(lr_schedule, epochs)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    run_dir = Path(run_dir)
    with distributed.cluster(device) as here, _StopSignals() as stop:
        if precision == "bfloat16" and here.is_main and not native_bfloat16(here.device):
            warnings.warn(
                f"precision='bfloat16': {here.device} has no bfloat16 arithmetic (CPUs need "
                "AVX512-BF16 or AMX, GPUs Ampere or later), so it is emulated and training is "
                "likely slower than in float32",
                stacklevel=2,
            )
        loop = _Loop(
            task, run_dir, here, stop,
            seed=seed, progress=progress and here.is_main, precision=precision, options=options,
        )  # fmt: skip
        loop.start(lr, epochs, lr_schedule, resume)
        try:
            return loop.run(epochs, eval_every, grad_clip, save_every)
        finally:
            # DistributedDataParallel's reducer holds the process group: it must go first, or
            # destroying it after the group can hang in gloo's destructor (seen under torchrun)
            loop.trained = None


class _Loop:
    """The state of one :func:`fit` call: model, optimizer, history and the position in an epoch."""

    def __init__(self, task, run_dir: Path, here, stop, *, seed, progress, precision, options):
        self.task, self.run_dir, self.here, self.stop = task, run_dir, here, stop
        self.seed, self.progress, self.precision = seed, progress, precision
        self.options = options
        self.ckpt_path = run_dir / "checkpoint.pt"

    def start(self, lr, epochs, lr_schedule, resume):
        torch.manual_seed(self.seed)
        self.model = self.task.build_model().to(self.here.device)
        if self.here.distributed and self.here.device.type == "cuda":
            # batch statistics over the global batch, as in one process (GPU only in PyTorch)
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.optimizer = adam(self.model.parameters(), lr, self.here.device)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_factor(lr_schedule, epochs)
        )
        self.history: list[dict[str, Any]] = []
        self.position: dict[str, Any] | None = None  # where a checkpoint stopped mid-epoch
        checkpoint.writable_folder(self.run_dir)  # after build_model: its errors come first
        if self.here.is_main:  # what a killed run was writing
            for name in ("checkpoint.pt", "metrics.jsonl"):
                checkpoint.remove_temporaries(self.run_dir / name)
        if resume and self.ckpt_path.exists():
            state = _resume_state(self.ckpt_path, self.task, self.seed)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.history = state["history"]
            self.position = state.get("position")
        elif self.ckpt_path.exists():
            raise ValueError(
                f"{self.run_dir} already holds a run; pass resume=True or use a new folder"
            )
        self.trained = self.model
        if self.here.distributed:
            ids = [self.here.device.index] if self.here.device.type == "cuda" else None
            self.trained = DistributedDataParallel(self.model, device_ids=ids)

    def run(self, epochs, eval_every, grad_clip, save_every):
        for epoch in range(len(self.history), epochs):
            row = self._train_epoch(epoch, grad_clip, save_every)
            row["lr"] = self.scheduler.get_last_lr()[0]
            self.scheduler.step()
            if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
                self.model.eval()
                torch.manual_seed(derive_seed(self.seed, epoch, "evaluate"))
                with torch.no_grad():
                    row.update(self.task.evaluate(self.model))
            self.history.append(row)
            self.position = None
            self._save()
            if self.here.is_main:
                lines = "".join(json.dumps(r) + "\n" for r in self.history)
                checkpoint.atomic_write(
                    self.run_dir / "metrics.jsonl", lambda f, s=lines: f.write(s.encode())
                )
                if self.progress:
                    tqdm.write(_summary(row))
            if distributed.all_sum([float(self.stop.received is not None)], self.here)[0]:
                self._interrupted(f"after epoch {epoch + 1}")
        return self.history

    def _save(self):
        if not self.here.is_main:
            return
        state = {
            "task": self.task.name,
            "config": self.task.config(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
            "position": self.position,
            "seed": self.seed,
            "options": self.options,
        }
        checkpoint.save(self.ckpt_path, "checkpoint", state)

    def _interrupted(self, where: str):
        why = self.stop.received.name if self.stop.received is not None else "another process"
        raise TrainingInterrupted(
            f"stopped by {why} {where}; {self.ckpt_path} holds the run: resume it to continue"
        )

    def _batches(self, epoch: int, start: int):
        """``(number of batches or None, iterator over (step, global batch))`` from step ``start``.

        The global RNG is seeded before each batch is drawn, identically on every rank; the
        batches before ``start`` (done before a checkpoint) are drawn again and dropped.
        """
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        batches = self.task.train_batches(epoch, generator)
        total = len(batches) if hasattr(batches, "__len__") else None

        def steps():
            iterator = iter(batches)
            for step in itertools.count():
                torch.manual_seed(derive_seed(self.seed, epoch, step, "data"))
                batch = next(iterator, None)
                if batch is None:
                    if step < start:
                        raise ValueError(
                            f"the checkpoint stopped at step {start} of epoch {epoch + 1}, but "
                            f"the task's epoch has {step} batches; resume with the same options"
                        )
                    return
                if step >= start:
                    yield step, batch

        return total, steps()

    def _local(self, batch):
        """This rank's slice of a global batch, and the global batch's size."""
        size = self.task.batch_size(batch)
        here = self.here
        if not here.distributed:
            return batch, size
        if hasattr(self.task, "shard"):
            return self.task.shard(batch, here.rank, here.world_size), size
        return distributed.shard(batch, size, here.rank, here.world_size), size

    def _train_epoch(self, epoch, grad_clip, save_every):
        done = self.position or {"step": 0, "loss_sum": 0.0, "items": 0, "seconds": 0.0}
        steps, loss_sum, items = done["step"], done["loss_sum"], done["items"]
        start = time.perf_counter() - done["seconds"]
        total, batches = self._batches(epoch, steps)
        bar = tqdm(
            desc=f"epoch {epoch + 1}",
            total=total,
            initial=steps,
            disable=not self.progress,
            leave=False,
        )
        self.model.train()
        for step, batch in batches:
            local, size = self._local(batch)
            torch.manual_seed(derive_seed(self.seed, epoch, step, "loss", self.here.rank))
            with autocast(self.here.device, self.precision):
                loss = self.task.loss(self.trained, to_device(local, self.here.device))
            n_local = self.task.batch_size(local) if self.here.distributed else size
            stats = [loss.item() * n_local, n_local, float(self.stop.received is not None)]
            step_loss_sum, step_items, stopping = distributed.all_sum(stats, self.here)
            if not math.isfinite(step_loss_sum):
                raise FloatingPointError(
                    f"the loss became {step_loss_sum / step_items} at epoch {epoch + 1}, step "
                    f"{step + 1}; try a lower learning rate or a higher tau"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), grad_clip)
            self.optimizer.step()
            steps, loss_sum, items = steps + 1, loss_sum + step_loss_sum / step_items, items + size
            elapsed = time.perf_counter() - start
            bar.update()
            bar.set_postfix(loss=f"{loss_sum / steps:.4g}", items_per_s=f"{items / elapsed:.0f}")
            if stopping or (save_every and steps % save_every == 0):
                self.position = {
                    "epoch": epoch,
                    "step": steps,
                    "loss_sum": loss_sum,
                    "items": items,
                    "seconds": elapsed,
                }
                self._save()
            if stopping:
                bar.close()
                self._interrupted(f"at epoch {epoch + 1}, step {steps}")
        bar.close()
        seconds = time.perf_counter() - start
        return {
            "epoch": epoch + 1,
            "loss": loss_sum / max(steps, 1),
            "seconds": seconds,
            "items_per_s": items / seconds if seconds > 0 else 0.0,
        }


def _summary(row: dict[str, Any]) -> str:
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
