"""The task contract: what an experiment gives the training loop, the saved models and the CLI.

A task is a subclass of :class:`Task`. Defining it registers it under its ``name`` (nothing to
add anywhere else); :func:`gumbel_sinkhorn.tasks.task_class` finds it again, for example to
rebuild a saved model from the task name and configuration in its weights file.

>>> from gumbel_sinkhorn.tasks import task_class
>>> task = task_class("sorting").create(n=5, eval_lists=50)
>>> model = task.build_model()
>>> batch = task.train_batches(0, torch.Generator().manual_seed(0))[0]
>>> task.loss(model, batch).item() > 0
True
>>> task.predict(model, batch.random).shape                   # hard matching, item -> slot
torch.Size([10, 5])
"""

from __future__ import annotations

import abc
import inspect
from typing import Any, ClassVar

import torch

from ..configs import Config
from ..errors import InvalidValueError
from ..ops import gumbel_sinkhorn, matching

#: Every concrete task, by name; filled as task classes are defined.
REGISTRY: dict[str, type[Task]] = {}


class Task(abc.ABC):
    """An experiment: its configuration, data, model, loss and metrics.

    Subclasses set ``name`` (the registry key, stored in weights files), ``Config`` (a frozen
    configuration dataclass whose field ``sampling`` is a
    :class:`~gumbel_sinkhorn.configs.SamplingConfig`) and ``metrics`` (the keys ``evaluate``
    returns, in display order), and implement the abstract methods. Networks return scores
    (``log_alpha``, row ``i`` = item ``i``); the task samples them (:meth:`sample`) for the loss
    and solves them (:meth:`predict`) for the metrics, the same way in every task.
    """

    name: ClassVar[str]
    Config: ClassVar[type[Config]]
    metrics: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if inspect.isabstract(cls):
            return
        known = REGISTRY.get(cls.name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"two tasks are named {cls.name!r}: {known} and {cls}")
        REGISTRY[cls.name] = cls

    def __init__(self, config: Config):
        if not isinstance(config, self.Config):
            raise InvalidValueError(
                f"{type(self).__name__} needs a {self.Config.__name__}, got {type(config).__name__}"
            )
        self.config = config

    @classmethod
    def create(cls, **options) -> Task:
        """The task with these configuration options (the rest default)."""
        return cls(cls.Config(**options))

    @classmethod
    def from_config(cls, config: Config | dict[str, Any], **context) -> Task:
        """The task of a stored configuration (a dict as a checkpoint keeps it, or a Config).

        ``context``: where things are rather than what the experiment is (``data_root``).
        """
        if isinstance(config, dict):
            config = cls.Config.from_dict(config)
        return cls(config, **context)

    # -- what every task implements -----------------------------------------------------------

    @abc.abstractmethod
    def build_model(self) -> torch.nn.Module:
        """A fresh network: inputs in, scores ``log_alpha`` ``(B, N, N)`` out."""

    @abc.abstractmethod
    def train_batches(self, epoch: int, generator: torch.Generator):
        """One epoch of *global* batches, their randomness drawn from ``generator``."""

    @abc.abstractmethod
    def loss(self, model: torch.nn.Module, batch) -> torch.Tensor:
        """The training loss of ``batch`` (a scalar tensor)."""

    @abc.abstractmethod
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """The metrics on held-out data (keys ``metrics``), with hard matching."""

    def batch_size(self, batch) -> int:
        """How many items ``batch`` holds (default: the length of its first field)."""
        return len(batch[0])

    # -- shared by every task ------------------------------------------------------------------

    def sample(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """Gumbel-Sinkhorn samples of ``log_alpha`` ``(B, N, N)`` as ``config.sampling`` says:
        ``(n_samples, B, N, N)`` soft permutation matrices (differentiable)."""
        s = self.config.sampling
        P = gumbel_sinkhorn(
            log_alpha,
            tau=s.tau,
            n_iter=s.n_iter,
            n_samples=s.n_samples,
            noise_factor=s.noise_factor,
        )
        return P.unsqueeze(0) if s.n_samples == 1 else P

    @torch.no_grad()
    def predict(
        self, model: torch.nn.Module, inputs: torch.Tensor, *, chunk_size: int = 1000
    ) -> torch.Tensor:
        """Hard matching of the model's scores, no noise: ``perm[b, i]`` = the slot of item ``i``.

        ``inputs`` ``(B, ...)`` are scored ``chunk_size`` at a time on the model's device; the
        result is ``(B, N)`` int64 on the CPU.
        """
        device = next(model.parameters()).device
        chunks = [matching(model(part.to(device))).cpu() for part in inputs.split(chunk_size)]
        return torch.cat(chunks)
