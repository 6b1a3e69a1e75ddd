"""The generative model of the worm experiment and its simulator.

Every worm has the same named neurons and weights ``W`` on the connectome's pattern; the named
activity follows ``x_t = W x_{t-1} + e_t`` with ``e_t ~ N(0, noise_std^2 I)``, and a recording
lists the neurons in an unknown order: recorded neuron ``i`` of worm ``j`` is neuron
``perm[j, i]``. Side information restricts the names: a recorded neuron may only take a name whose
expected soma position is within ``eta`` of its observed one, and some neurons' names are given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from .. import _checks
from ..configs.celegans import SimulationConfig
from ..data.celegans import Connectome, load_connectome
from ..errors import InvalidTypeError, InvalidValueError

DEFAULT_CONFIG = SimulationConfig()


@dataclass(frozen=True)
class Worms:
    """What inference sees: traces ``Y`` ``(J, N, T)`` (row ``i`` = recorded neuron ``i``), the
    allowed names ``mask`` ``(J, N, N)`` (``mask[j, i, k]``: name ``k`` allowed for recorded
    neuron ``i``), which recorded neurons are ``known`` ``(J, N)``, the connectome's ``pattern``
    ``(N, N)`` and the dynamics' ``noise_std``."""

    Y: torch.Tensor
    mask: torch.Tensor
    known: torch.Tensor
    pattern: torch.Tensor
    noise_std: float = 1.0

    def __post_init__(self):
        _checks.tensor(self.Y, "Y", min_dim=3, floating=True)
        j, n, t = self.Y.shape
        expected = {"mask": (j, n, n), "known": (j, n), "pattern": (n, n)}
        for name, shape in expected.items():
            value = _checks.tensor(getattr(self, name), name)
            if value.dtype != torch.bool or tuple(value.shape) != shape:
                raise InvalidValueError(
                    f"{name} must be a bool tensor of shape {shape} for Y of shape (J, N, T) = "
                    f"{(j, n, t)}, got {value.dtype} {tuple(value.shape)}"
                )
        if t < 2:
            raise InvalidValueError(f"Y needs at least 2 time steps, got {t}")
        _checks.positive(self.noise_std, "noise_std")

    def name(self, which: torch.Tensor, names: torch.Tensor) -> Worms:
        """These worms with recorded neurons ``which`` ``(J, N)`` (bool) known as ``names``
        ``(J, N)`` (read where ``which``): each may only take its name, which no other may take.

        >>> import torch
        >>> worms = Worms(torch.zeros(1, 2, 3), torch.ones(1, 2, 2, dtype=torch.bool),
        ...               torch.zeros(1, 2, dtype=torch.bool), torch.eye(2, dtype=torch.bool))
        >>> worms.name(torch.tensor([[True, False]]), torch.tensor([[1, 0]])).mask.int()
        tensor([[[0, 1],
                 [1, 0]]], dtype=torch.int32)
        """
        j, n = self.known.shape
        which, names = _checks.tensor(which, "which"), _checks.tensor(names, "names")
        bad_names = names.dtype.is_floating_point or names.dtype.is_complex
        if which.dtype != torch.bool or bad_names or which.shape != (j, n) or names.shape != (j, n):
            raise InvalidValueError(
                f"which must be a bool tensor and names an integer tensor, both of shape "
                f"{(j, n)}, got {which.dtype} {tuple(which.shape)} and {tuple(names.shape)}"
            )
        mask = self.mask.clone()
        for worm, i in which.nonzero().tolist():
            k = int(names[worm, i])
            if not 0 <= k < n or not mask[worm, i, k]:
                raise InvalidValueError(
                    f"name {k} is not allowed for recorded neuron {i} of worm {worm}"
                )
            mask[worm, :, k] = False
            mask[worm, i] = False
            mask[worm, i, k] = True
        for worm in range(j):
            check_assignable(mask[worm], what=f"the names given in worm {worm}")
        return Worms(self.Y, mask, self.known | which, self.pattern, self.noise_std)

    @property
    def mean_candidates(self) -> float:
        """Mean number of allowed names of the neurons whose names are not given."""
        counts = self.mask.sum(-1)[~self.known]
        return float(counts.double().mean()) if counts.numel() else 0.0


@dataclass(frozen=True)
class Simulation:
    """A simulated data set and its truth: ``perm[j, i]`` is the name of recorded neuron ``i``."""

    worms: Worms
    weights: torch.Tensor
    perm: torch.Tensor
    config: SimulationConfig


def random_weights(
    pattern: torch.Tensor, *, generator: torch.Generator | None = None, radius_factor: float = 1.1
) -> torch.Tensor:
    """Antisymmetric weights on a symmetric ``pattern``, scaled to spectral radius
    ``1 / radius_factor``.

    >>> import torch
    >>> pattern = torch.tensor([[0, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=torch.bool)
    >>> W = random_weights(pattern, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.equal(W, -W.T)), round(float(torch.linalg.eigvals(W).abs().max()), 4)
    (True, 0.9091)

    Entries above the diagonal are standard normal where ``pattern`` is True, mirrored with the
    opposite sign below; the eigenvalues are then imaginary (undamped oscillations), all of
    modulus at most ``1 / radius_factor``. float64 ``(N, N)``.
    """
    _checks.tensor(pattern, "pattern", min_dim=2)
    if pattern.dtype != torch.bool or not torch.equal(pattern, pattern.T):
        raise InvalidValueError("pattern must be a symmetric bool (N, N) tensor")
    n = pattern.shape[-1]
    upper = torch.randn(n, n, generator=generator, dtype=torch.float64) * pattern
    upper = torch.triu(upper, diagonal=1)
    W = upper - upper.T
    radius = float(torch.linalg.eigvals(W).abs().max())
    if radius == 0:
        raise InvalidValueError("pattern has no edge: the weights would all be 0")
    return W / (radius_factor * radius)


def simulate_activity(
    W: torch.Tensor, n_steps: int, *, noise_std: float = 1.0, generator=None
) -> torch.Tensor:
    """``n_steps`` steps of ``x_t = W x_{t-1} + noise_std * e_t`` from ``x_0 ~ N(0, I)``.

    >>> import torch
    >>> simulate_activity(torch.zeros(3, 3, dtype=torch.float64), 5).shape
    torch.Size([3, 5])
    """
    noise = noise_std * torch.randn(n_steps, W.shape[0], generator=generator, dtype=W.dtype)
    x = torch.randn(W.shape[0], generator=generator, dtype=W.dtype)
    X = torch.empty(n_steps, W.shape[0], dtype=W.dtype)
    for t in range(n_steps):
        x = W @ x + noise[t]
        X[t] = x
    return X.T.contiguous()


def candidate_mask(
    observed: torch.Tensor,
    positions: torch.Tensor,
    eta: float,
    *,
    known: dict[int, int] | None = None,
    labels=None,
) -> torch.Tensor:
    """Allowed names: ``mask[i, k]`` when ``|observed[i] - positions[k]| <= eta``, with the
    ``known`` names (recorded neuron -> name) fixed.

    >>> import torch
    >>> pos = torch.tensor([0.1, 0.1, 0.5])
    >>> candidate_mask(pos, pos, 0.01).int()
    tensor([[1, 1, 0],
            [1, 1, 0],
            [0, 0, 1]], dtype=torch.int32)
    >>> candidate_mask(pos, pos, 0.01, known={0: 1}).int()
    tensor([[0, 1, 0],
            [1, 0, 0],
            [0, 0, 1]], dtype=torch.int32)

    A known neuron may only take its name, which no other neuron may take. The result is checked
    with ``check_assignable`` (``labels`` name the recorded neurons in its errors).
    """
    eta = _checks.non_negative(eta, "eta")
    # positions have two decimals: a margin keeps "within eta" exact despite rounding
    mask = (observed[:, None] - positions[None, :]).abs() <= eta + 1e-9
    for i, k in (known or {}).items():
        if not 0 <= k < len(positions) or not 0 <= i < len(observed):
            raise InvalidValueError(f"known: recorded neuron {i} -> name {k} is out of range")
        mask[:, k] = False
        mask[i] = False
        mask[i, k] = True
    check_assignable(mask, labels, what=f"eta = {eta} and {len(known or {})} known neurons")
    return mask


def check_assignable(mask: torch.Tensor, labels=None, *, what: str = "the constraints") -> None:
    """Raise one InvalidValueError naming a recorded neuron unless ``mask`` ``(N, N)`` allows a
    complete assignment (every recorded neuron its own allowed name).

    >>> import torch
    >>> check_assignable(torch.tensor([[True, True], [True, False]]))
    >>> check_assignable(torch.tensor([[True, False], [True, False]]), ["AVAL", "AVAR"])
    Traceback (most recent call last):
    ...
    gumbel_sinkhorn.errors.InvalidValueError: the constraints allow no complete assignment: ...
    """
    labels = list(labels) if labels is not None else [str(i) for i in range(mask.shape[0])]
    empty = (~mask.any(-1)).nonzero().flatten().tolist()
    if empty:
        raise InvalidValueError(
            f"{what} leave recorded neuron {labels[empty[0]]} without any allowed name"
            + (f" ({len(empty) - 1} more)" if len(empty) > 1 else "")
        )
    matched = maximum_bipartite_matching(csr_matrix(mask.numpy()), perm_type="column")
    unmatched = np.flatnonzero(matched < 0)
    if len(unmatched):
        raise InvalidValueError(
            f"{what} allow no complete assignment: recorded neuron {labels[unmatched[0]]} gets "
            f"no name once the others have theirs ({len(unmatched)} neurons short)"
        )


def simulate(
    config: SimulationConfig = DEFAULT_CONFIG,
    *,
    seed: int = 0,
    connectome: Connectome | None = None,
) -> Simulation:
    """One simulated data set: weights, then each worm's activity, permutation, known neurons
    and position constraints, all from ``seed``.

    >>> sim = simulate(SimulationConfig(n_worms=2, n_steps=50), seed=1)
    >>> sim.worms.Y.shape, sim.perm.shape, int(sim.worms.known.sum())
    (torch.Size([2, 279, 50]), torch.Size([2, 279]), 50)
    """
    if not isinstance(config, SimulationConfig):
        raise InvalidTypeError(f"config must be a SimulationConfig, got {type(config).__name__}")
    connectome = connectome or load_connectome()
    n = len(connectome.names)
    if config.n_known > n:
        raise InvalidValueError(f"n_known must be at most the {n} neurons, got {config.n_known}")
    gen = torch.Generator().manual_seed(_checks.count(seed, "seed", minimum=0))
    pattern = connectome.pattern
    W = random_weights(pattern, generator=gen, radius_factor=config.radius_factor)
    Ys, perms, masks, knowns = [], [], [], []
    for _ in range(config.n_worms):
        X = simulate_activity(W, config.n_steps, noise_std=config.noise_std, generator=gen)
        perm = torch.randperm(n, generator=gen)
        observed = connectome.positions[perm] + config.position_noise * torch.randn(
            n, generator=gen, dtype=torch.float64
        )
        known = torch.zeros(n, dtype=torch.bool)
        known[torch.randperm(n, generator=gen)[: config.n_known]] = True
        given = {i: int(perm[i]) for i in known.nonzero().flatten().tolist()}
        labels = [f"{i} (truly {connectome.names[k]})" for i, k in enumerate(perm.tolist())]
        masks.append(
            candidate_mask(observed, connectome.positions, config.eta, known=given, labels=labels)
        )
        Ys.append(X[perm].float())
        perms.append(perm)
        knowns.append(known)
    worms = Worms(
        torch.stack(Ys), torch.stack(masks), torch.stack(knowns), pattern, config.noise_std
    )
    return Simulation(worms, W, torch.stack(perms), config)


def accuracy(perm: torch.Tensor, truth) -> float:
    """Fraction of the neurons whose names were not given that ``perm`` ``(J, N)`` names right.

    ``truth`` is a ``Simulation`` (or a pair ``(true perm, known)``).
    """
    true_perm, known = (truth.perm, truth.worms.known) if isinstance(truth, Simulation) else truth
    unknown = ~known
    if not unknown.any():
        return math.nan
    return float((perm == true_perm)[unknown].double().mean())
