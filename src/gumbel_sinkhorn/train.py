"""The one training loop: every experiment is a Task, trained and checkpointed the same way.

A task (:class:`gumbel_sinkhorn.tasks.Task`: ``name``, ``config``, ``build_model()``,
``train_batches(epoch, generator)``, ``loss(model, batch)``, ``batch_size(batch)``,
``evaluate(model) -> dict``) says what to learn; :func:`fit` does the rest: seeding, Adam, warm
starts, progress, per-epoch evaluation, ``metrics.jsonl``, atomic checkpoints, resume (also from
the middle of an epoch), Ctrl-C, and torchrun / DistributedDataParallel. It returns a
:class:`FitResult` (the trained model, the history, the run folder).

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

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from . import _extras, checkpoint, distributed
from .configs import FitConfig
from .errors import InvalidValueError, MissingFileError
from .runs import RunFolder

try:
    from tqdm.auto import tqdm
except ImportError as err:
    raise _extras.missing("tqdm", "gumbel_sinkhorn.train (progress bars)") from err


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` trained: the model (eval mode, on its device), one row per epoch, and
    the run folder that holds its checkpoint and ``metrics.jsonl``."""

    model: torch.nn.Module
    history: list[dict[str, Any]]
    run: RunFolder

    @property
    def metrics(self) -> dict[str, Any]:
        """The last epoch's row (its evaluation metrics included)."""
        return self.history[-1] if self.history else {}


# fit's precision: the dtype its forward passes autocast to (None: plain float32)
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}  # FitConfig.precision


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


def read_run(run: str | os.PathLike | RunFolder) -> dict[str, Any]:
    """The checkpoint of the run in ``run`` (its config, ``fit`` options, history, weights...)."""
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    if not run.has_run():
        raise MissingFileError(f"{run.path} has no {run.checkpoint.name} to resume from")
    return checkpoint.load(run.checkpoint, "checkpoint")


def warm_start(model: torch.nn.Module, task, source: str | os.PathLike) -> None:
    """Load the weights of ``source`` (a shipped name, weights file or run folder) into ``model``.

    The weights must come from the same kind of task; a model that defines ``load_smaller``
    (:meth:`~gumbel_sinkhorn.nn.SinkhornPieceNet.load_smaller`) may grow parts they lack.
    """
    payload = checkpoint.read_weights(source)
    if payload["task"] != task.name:
        raise InvalidValueError(
            f"init weights {source} are a {payload['task']} model, not a {task.name} one"
        )
    load = getattr(model, "load_smaller", None) or model.load_state_dict
    try:
        load(payload["state_dict"])
    except (RuntimeError, ValueError) as err:
        raise InvalidValueError(
            f"init weights {source} do not fit this model: {checkpoint.first_line(err)}"
        ) from err


def _lr_factor(schedule: str | None, epochs: int):
    if schedule in (None, "none"):
        return lambda epoch: 1.0
    if schedule == "cosine":
        return lambda epoch: 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    raise InvalidValueError(f"lr_schedule must be None, 'none' or 'cosine', got {schedule!r}")


def _check_resume(state: dict[str, Any], path: Path, task, seed: int) -> None:
    if state["task"] != task.name:
        raise InvalidValueError(
            f"{path} was written for another experiment ({state['task']}, not {task.name}); "
            "use a new run folder"
        )
    changed = _differences(_saved_config(task, state["config"]), task.config.to_dict())
    if changed:
        raise InvalidValueError(
            f"{path} was written for another experiment: {'; '.join(changed)}. Resume with the "
            "run's options or use a new run folder"
        )
    if state["seed"] != seed:
        raise InvalidValueError(
            f"{path} was trained with seed {state['seed']}; resume it with the same seed "
            f"(got {seed}) or use a new run folder"
        )


def _saved_config(task, config: dict) -> dict:
    """A checkpoint's task config in today's form (older releases named options otherwise)."""
    return type(task.config).from_dict(config).to_dict()


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
    task,
    run_dir: str | os.PathLike | RunFolder,
    config: FitConfig | None = None,
    *,
    resume: bool | dict[str, Any] = False,
    init: str | os.PathLike | None = None,
    progress: bool | None = None,
    device: str | torch.device | None = None,
    **options,
) -> FitResult:
    """Train ``task``'s model as ``config`` (or ``FitConfig(**options)``) says.

    >>> import tempfile
    >>> from gumbel_sinkhorn.tasks.sorting import SortingTask
    >>> task = SortingTask.create(n=5, steps_per_epoch=5, eval_lists=20)
    >>> result = fit(task, tempfile.mkdtemp(), epochs=2, lr=0.1, progress=False)
    >>> len(result.history), 'kendall_tau' in result.metrics, result.run.checkpoint.name
    (2, True, 'checkpoint.pt')

    Writes ``checkpoint.pt`` (atomically, after every epoch, every ``save_every`` steps if given,
    and on Ctrl-C / SIGTERM before raising :class:`TrainingInterrupted`) and ``metrics.jsonl``
    into the run folder (:class:`~gumbel_sinkhorn.runs.RunFolder`). ``resume=True`` continues
    from the checkpoint, also from the middle of an epoch (a resumed run ends with the same
    weights as an uninterrupted one) and rewrites ``metrics.jsonl`` from it even when nothing is
    left to train; ``resume`` may also be the checkpoint :func:`read_run` already read.
    ``init``: start from these weights (:func:`warm_start`). ``progress``: a progress bar and a
    line per epoch; ``None`` (default) shows the bar only on a terminal and the lines always.

    Under ``torchrun --nproc-per-node K`` it trains with DistributedDataParallel: each rank trains
    on its slice of every global batch, the loss and items/s are summed over ranks, and only rank 0
    writes files and shows the progress bar. Every rank returns the same history. On GPUs the
    model's BatchNorm layers become SyncBatchNorm (statistics of the global batch); PyTorch has no
    CPU SyncBatchNorm, so on CPUs they normalise each rank's slice.

    ``precision="bfloat16"``: the training steps' forward passes run under ``torch.autocast``
    (convolutions and matrix products in bfloat16, weights and optimizer in float32; the
    Sinkhorn operator still solves in float32). Faster where the hardware has bfloat16 units
    (recent GPUs; CPUs with AVX512-BF16 or AMX); where it must be emulated (slower) ``fit``
    warns (:func:`native_bfloat16`). Evaluation stays in float32.
    """
    config = (config or FitConfig()).replace(**options)
    run = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)
    with distributed.cluster(device) as here, _StopSignals() as stop:
        if config.precision == "bfloat16" and here.is_main and not native_bfloat16(here.device):
            warnings.warn(
                f"precision='bfloat16': {here.device} has no bfloat16 arithmetic (CPUs need "
                "AVX512-BF16 or AMX, GPUs Ampere or later), so it is emulated and training is "
                "likely slower than in float32",
                stacklevel=2,
            )
        bar = sys.stderr.isatty() if progress is None else progress
        loop = _Loop(task, run, here, stop, config, bar=bar and here.is_main,
                     lines=progress is not False and here.is_main)  # fmt: skip
        new_folder = not run.path.exists()
        try:
            loop.start(resume, init)
            history = loop.run()
        except BaseException:
            if new_folder and here.is_main:  # a refused or failed start leaves no empty folder
                _remove_if_empty(run.path)
            raise
        finally:
            # DistributedDataParallel's reducer holds the process group: it must go first, or
            # destroying it after the group can hang in gloo's destructor (seen under torchrun)
            loop.trained = None
        return FitResult(loop.model.eval(), history, run)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (a checkpoint to resume from), or gone
        folder.rmdir()


class _Loop:
    """The state of one :func:`fit` call: model, optimizer, history and the position in an epoch."""

    def __init__(self, task, run: RunFolder, here, stop, config: FitConfig, *, bar, lines):
        self.task, self.run_folder, self.here, self.stop = task, run, here, stop
        self.config, self.seed, self.bar, self.lines = config, config.seed, bar, lines
        self.ckpt_path = run.checkpoint

    def start(self, resume, init):
        cfg = self.config
        torch.manual_seed(self.seed)
        self.model = self.task.build_model().to(self.here.device)
        if init is not None:
            warm_start(self.model, self.task, init)
        if self.here.distributed and self.here.device.type == "cuda":
            # batch statistics over the global batch, as in one process (GPU only in PyTorch)
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.optimizer = adam(self.model.parameters(), cfg.lr, self.here.device)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_factor(cfg.lr_schedule, cfg.epochs)
        )
        self.history: list[dict[str, Any]] = []
        self.position: dict[str, Any] | None = None  # where a checkpoint stopped mid-epoch
        checkpoint.writable_folder(self.run_folder.path)  # after build_model: its errors first
        if self.here.is_main:  # what a killed run was writing
            for path in (self.ckpt_path, self.run_folder.metrics):
                checkpoint.remove_temporaries(path)
        if resume is not False and self.run_folder.has_run():
            state = resume if isinstance(resume, dict) else read_run(self.run_folder)
            _check_resume(state, self.ckpt_path, self.task, self.seed)
            checkpoint.load_state(self.model, state["model"], self.ckpt_path)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self._follow_schedule()
            self.history = state["history"]
            self.position = state.get("position")
            self._write_metrics()  # a run killed before it rewrote them gets them back
        elif self.run_folder.has_run():
            raise InvalidValueError(
                f"{self.run_folder.path} already holds a run; resume it or use a new folder"
            )
        self.trained = self.model
        if self.here.distributed:
            ids = [self.here.device.index] if self.here.device.type == "cuda" else None
            self.trained = DistributedDataParallel(self.model, device_ids=ids)

    def _follow_schedule(self):
        """Set the learning rate from this call's schedule at the resumed epoch: the optimizer's
        stored rate is that of the run's own last step, 0 for a finished cosine run that is now
        given more epochs."""
        scheduler = self.scheduler
        for group, base, factor in zip(
            self.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base * factor(scheduler.last_epoch)

    def run(self):
        epochs, eval_every = self.config.epochs, self.config.eval_every
        for epoch in range(len(self.history), epochs):
            row = self._train_epoch(epoch, self.config.grad_clip, self.config.save_every)
            row["lr"] = self.optimizer.param_groups[0]["lr"]  # the epoch's rate
            self.scheduler.step()
            if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
                self.model.eval()
                torch.manual_seed(derive_seed(self.seed, epoch, "evaluate"))
                with torch.no_grad():
                    row.update(self.task.evaluate(self.model))
            self.history.append(row)
            self.position = None
            self._save()
            self._write_metrics()
            if self.lines:
                tqdm.write(_summary(row), file=sys.stderr if self.bar else sys.stdout)
            if distributed.all_sum([float(self.stop.received is not None)], self.here)[0]:
                self._interrupted(f"after epoch {epoch + 1}")
        return self.history

    def _write_metrics(self):
        if self.here.is_main:
            lines = "".join(json.dumps(r) + "\n" for r in self.history)
            checkpoint.atomic_write(self.run_folder.metrics, lambda f: f.write(lines.encode()))

    def _save(self):
        if not self.here.is_main:
            return
        state = {
            "task": self.task.name,
            "config": self.task.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
            "position": self.position,
            "seed": self.seed,
            "fit": self.config.to_dict(),
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
                        raise InvalidValueError(
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
            disable=not self.bar,
            leave=False,
        )
        self.model.train()
        for step, batch in batches:
            local, size = self._local(batch)
            torch.manual_seed(derive_seed(self.seed, epoch, step, "loss", self.here.rank))
            with autocast(self.here.device, self.config.precision):
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
