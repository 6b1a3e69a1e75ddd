"""The C. elegans experiment's options: one simulated data set, and the inference settings.

>>> cfg = SimulationConfig(n_worms=4, eta=0.02)
>>> SimulationConfig.from_dict(cfg.to_dict()) == cfg
True
>>> SimulationConfig(radius_factor=0.9)
Traceback (most recent call last):
...
gumbel_sinkhorn.errors.InvalidValueError: radius_factor must be > 1 (a stable system), got 0.9
"""

from __future__ import annotations

import dataclasses

from ..errors import InvalidValueError
from . import Config, check, count, non_negative, number, option

METHODS = ("naive", "map", "mcmc", "gumbel-sinkhorn")
TABLE_NAMES = ("candidates", "known")


@dataclasses.dataclass(frozen=True)
class SimulationConfig(Config):
    """The settings of one simulated data set (the papers' values by default).

    ``position_noise``: standard deviation of the observed soma positions around the expected
    ones (the papers do not state one; 0 reproduces their mean candidate counts). ``n_known``:
    recorded neurons per worm whose names are given, drawn at random for each worm.
    """

    n_worms: int = option(1, "worms sharing the weights", flag="worms")
    n_steps: int = option(1000, "time steps T of each recording", flag="time_steps")
    eta: float = option(
        0.0075, "a name is allowed if its position is within eta of the observed one"
    )
    n_known: int = option(25, "neurons per worm whose names are given", flag="known")
    position_noise: float = option(0.0, "std of the observed positions around the expected ones")
    noise_std: float = option(1.0, "std of the dynamics' noise")
    radius_factor: float = option(
        1.1, "the weights' spectral radius is 1 / radius_factor (> 1: a stable system)"
    )

    def __post_init__(self):
        check(self, n_worms=count, n_known=lambda v, n: count(v, n, minimum=0))
        check(self, n_steps=lambda v, n: count(v, n, minimum=2))
        check(self, eta=non_negative, position_noise=non_negative, noise_std=number)
        check(self, radius_factor=number)
        if self.radius_factor <= 1:
            raise InvalidValueError(
                f"radius_factor must be > 1 (a stable system), got {self.radius_factor}"
            )


@dataclasses.dataclass(frozen=True)
class Settings(Config):
    """Inference settings shared by every cell of a table (the command's options)."""

    steps: int = option(300, "VI / MAP: Adam steps")
    lr: float = option(0.1, "VI / MAP: learning rate of the name scores")
    lr_weights: float = option(0.1, "VI / MAP: learning rate of the weights' parameters")
    tau: float = option(1.0, "Gumbel-Sinkhorn temperature")
    n_iter: int = option(10, "Sinkhorn iterations")
    n_samples: int = option(1, "Monte Carlo samples per step", flag="samples")
    restarts: int = option(
        1, "VI: independent runs, the one with the lowest final objective kept (MAP: one run)"
    )
    consensus: int = option(
        1, "VI: runs per round; names they all agree on are given in the next round (1: off)"
    )
    rounds: int = option(4, "VI with --consensus above 1: the most rounds")
    antisymmetric: bool = option(
        False, "VI / MAP: the weights antisymmetric (W_lk = -W_kl, as simulated), one per pair"
    )
    sweeps: int = option(100, "MCMC sweeps")
    anneal_from: float = option(
        1.0, "MCMC: the likelihood's power at the first sweep, raised to 1 over the burn-in"
    )
    n_steps: int = option(1000, "time steps T of each recording")
    position_noise: float = option(0.0, "std of the observed positions")

    def __post_init__(self):
        check(self, steps=count, lr=number, lr_weights=number, tau=number, n_iter=count)
        check(
            self,
            n_samples=count,
            restarts=count,
            consensus=count,
            rounds=count,
            sweeps=count,
            n_steps=lambda v, n: count(v, n, minimum=2),
        )
        check(self, position_noise=non_negative, anneal_from=lambda v, n: number(v, n, high=1))

    @classmethod
    def from_dict(cls, values):
        """Records written before ``lr_weights`` existed used ``lr`` for the weights too."""
        if "lr_weights" not in values:
            values = {**values, "lr_weights": values.get("lr", cls.lr)}
        return super().from_dict(values)
