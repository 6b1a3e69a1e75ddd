"""Variational inference over every worm's permutation jointly with the weights, and MAP.

Three methods share one loop (Adam on a Monte Carlo objective) and differ only in ``q(P)``:

- ``gumbel-sinkhorn``: ``q(P_j)`` = Gumbel-Sinkhorn(``scores_j``, ``tau``) restricted to the
  allowed names; its KL to the prior (Gumbel-Sinkhorn with zero scores: uniform over allowed
  permutations) is the score-level surrogate of ``distributions.kl``;
- ``naive``: each row of ``P_j`` an independent Dirichlet over the allowed names (no permutation
  constraint), KL to the uniform Dirichlet;
- ``map``: a point estimate, ``P_j = S(scores_j / tau)`` (no noise) and ``W`` a point; the
  objective is the negative log joint.

``q(W)`` is a Gaussian with independent entries on the connectome's pattern (prior N(0, 1)), or
with ``antisymmetric=True`` one per connected pair (``W_lk = -W_kl``, as simulated).
The answer is the hard matching of the scores (each worm's most likely complete assignment).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch.distributions import Gamma, kl_divergence
from tqdm import tqdm

from .. import _checks
from ..distributions import GumbelMatching, GumbelSinkhorn
from ..errors import InvalidValueError
from ..ops import matching, sinkhorn
from .likelihood import Stats, expected_sq_error
from .model import Worms

METHODS = ("gumbel-sinkhorn", "naive", "map")
_NEG_INF = float("-inf")


@dataclass
class InferenceResult:
    """``perm`` ``(J, N)``: the name given to each recorded neuron; ``marginals`` ``(J, N, N)``:
    the estimated posterior probability of each name (rows sum to 1); ``history``: the objective
    every 10 steps (or the log-likelihood per sweep for MCMC); ``objectives``: each
    VI restart's final objective; ``kept``: the index of the restart whose answer this is;
    ``agreed``: by rounds of agreement (``fit_consensus``), the neurons each round's runs named
    alike."""

    method: str
    perm: torch.Tensor
    marginals: torch.Tensor
    seconds: float
    history: list[float] = field(default_factory=list)
    objectives: list[float] = field(default_factory=list)
    kept: int = 0
    agreed: list[int] = field(default_factory=list)


def fit_vi(
    worms: Worms,
    *,
    method: str = "gumbel-sinkhorn",
    steps: int = 500,
    lr: float = 0.1,
    lr_weights: float = 0.1,
    tau: float = 1.0,
    n_iter: int = 20,
    n_samples: int = 1,
    seed: int = 0,
    restarts: int = 1,
    antisymmetric: bool = False,
    marginal_samples: int = 100,
    progress: bool = True,
) -> InferenceResult:
    """Fit ``q(P_1..P_J) q(W)`` (or the MAP point) to ``worms``; see the module's docstring.

    >>> from gumbel_sinkhorn.celegans import SimulationConfig, simulate
    >>> sim = simulate(SimulationConfig(n_steps=100, n_known=270), seed=0)
    >>> fit_vi(sim.worms, method="naive", steps=5, progress=False).perm.shape
    torch.Size([1, 279])

    ``steps`` of Adam at learning rate ``lr`` for the scores and ``lr_weights`` for ``q(W)``'s
    parameters (the weights are of order 0.1; see docs/CELEGANS.md for what a smaller one does);
    ``tau`` and ``n_iter``: temperature and Sinkhorn iterations (Gumbel-Sinkhorn and MAP);
    ``n_samples``: Monte Carlo samples per step; ``marginal_samples``: hard samples drawn at the
    end to estimate Gumbel-Sinkhorn's marginals. ``antisymmetric``: ``q(W)`` (or MAP's point)
    has ``W_lk = -W_kl``, as the simulated weights do: one Gaussian per connected pair of the
    pattern (prior N(0, 1)) instead of one per entry.
    ``restarts``: independent runs of a VI method (the first with ``seed``, the others with
    seeds drawn from it), of which the one with the lowest final objective (the mean of the last
    tenth of its recorded values) is the result; its ``history`` is that run's, ``objectives``
    every run's final objective, ``seconds`` the time of them all. MAP has no randomness: one run.
    The same ``seed`` gives the same result (torch's global generator is left as it was).
    """
    if method not in METHODS:
        raise InvalidValueError(f"method must be one of {METHODS}, got {method!r}")
    steps = _checks.count(steps, "steps")
    restarts = _checks.count(restarts, "restarts")
    if method == "map" and restarts > 1:
        raise InvalidValueError(
            f"restarts must be 1 for method 'map' (it has no randomness), got {restarts}"
        )
    fit = _Fit(
        method,
        steps,
        _checks.positive(lr, "lr"),
        _checks.positive(lr_weights, "lr_weights"),
        _checks.positive(tau, "tau"),
        _checks.count(n_iter, "n_iter"),
        _checks.count(n_samples, "n_samples"),
        bool(antisymmetric),
        progress,
    )
    marginal_samples = _checks.count(marginal_samples, "marginal_samples", minimum=0)
    start = time.perf_counter()
    seeds = _restart_seeds(_checks.count(seed, "seed", minimum=0), restarts)
    stats = Stats.from_traces(worms.Y)
    labels = [f" {r + 1}/{restarts}" * (restarts > 1) for r in range(restarts)]
    runs = [fit.run(worms, stats, s, label) for s, label in zip(seeds, labels, strict=True)]
    objectives = [_final_objective(history) for _, history, _ in runs]
    best = min(range(restarts), key=objectives.__getitem__)
    scores, history, rng = runs[best]
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(rng)  # the marginals' samples continue that run's stream
        final = scores.masked_fill(~worms.mask, _NEG_INF)
        perm = matching(final)
        marginals = _marginals(
            method, final, worms.mask, fit.tau, fit.n_iter, perm, marginal_samples
        )
    seconds = time.perf_counter() - start
    return InferenceResult(method, perm, marginals, seconds, history, objectives, best)


def _restart_seeds(seed: int, restarts: int) -> list[int]:
    """``seed``, then ``restarts - 1`` seeds drawn from a generator seeded with it."""
    drawn = torch.randint(2**62, (restarts - 1,), generator=torch.Generator().manual_seed(seed))
    return [seed, *drawn.tolist()]


def _final_objective(history: list[float]) -> float:
    """The mean of the last tenth (at least one) of a run's recorded objective values."""
    tail = history[-max(1, len(history) // 10) :]
    return sum(tail) / len(tail)


@dataclass(frozen=True)
class _Fit:
    """One run of fit_vi's optimisation (its validated settings)."""

    method: str
    steps: int
    lr: float
    lr_weights: float
    tau: float
    n_iter: int
    n_samples: int
    antisymmetric: bool
    progress: bool

    def run(self, worms: Worms, stats: Stats, seed: int, label: str):
        """The scores at the end of a run from ``seed``, its objective every 10 steps, and the
        state of torch's generator at the end."""
        method, tau, n_iter = self.method, self.tau, self.n_iter
        mask, pattern = worms.mask, worms.pattern.to(stats.cross.dtype)
        dtype = stats.cross.dtype
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            scores = torch.zeros(mask.shape, dtype=dtype, requires_grad=True)
            free = pattern.triu(1) if self.antisymmetric else pattern  # the free entries
            mean = torch.zeros_like(pattern, requires_grad=True)
            log_std = torch.full_like(pattern, -3.0, requires_grad=True)
            weights = [mean] + ([log_std] if method != "map" else [])
            optimizer = torch.optim.Adam(
                [{"params": [scores]}, {"params": weights, "lr": self.lr_weights}], lr=self.lr
            )
            prior = GumbelSinkhorn(torch.zeros((), dtype=dtype).expand(mask.shape), tau, mask=mask)
            history = []
            bar = tqdm(
                range(self.steps),
                desc=f"{method} VI{label}",
                disable=None if self.progress else True,
            )
            for step in bar:
                if method == "gumbel-sinkhorn":
                    q = GumbelSinkhorn(scores, tau, n_iter=n_iter, mask=mask)
                    P, kl_p = q.rsample((self.n_samples,)), kl_divergence(q, prior).sum()
                elif method == "naive":
                    P, kl_p = _dirichlet_rows(scores, mask, self.n_samples)
                else:
                    P = sinkhorn(
                        scores.masked_fill(~mask, _NEG_INF), n_iter=n_iter, tau=tau, mask=mask
                    )
                    kl_p = 0.0
                U = mean * free
                W = U - U.mT if self.antisymmetric else U
                if method == "map":
                    sq_error = expected_sq_error(P, stats, W)
                    penalty = 0.5 * U.square().sum()
                else:
                    var = torch.exp(2 * log_std) * free
                    penalty = 0.5 * ((var + U.square() - 1 - 2 * log_std) * free).sum()
                    if self.antisymmetric:
                        var = var + var.mT
                    sq_error = expected_sq_error(P, stats, W, var, antisymmetric=self.antisymmetric)
                nll = sq_error.sum(-1).mean() / (2 * worms.noise_std**2)
                loss = nll + penalty + kl_p
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if step % 10 == 0 or step == self.steps - 1:
                    history.append(float(loss.detach()))
                    bar.set_postfix(objective=f"{history[-1]:.4g}")
            return scores.detach(), history, torch.get_rng_state()


def _dirichlet_rows(scores: torch.Tensor, mask: torch.Tensor, n_samples: int):
    """Samples of rows ~ Dirichlet(exp(scores)) over the allowed entries, and the KL of those
    Dirichlets to the uniform ones. The concentrations stay in [exp(-3), exp(15)] and the Gamma
    draws are made in float64: below that, they underflow to 0 and the normalisation's gradient
    is NaN."""
    conc = torch.where(mask, scores.double().clamp(-3.0, 15.0).exp(), 1.0)
    gammas = Gamma(conc, torch.ones_like(conc), validate_args=False).rsample((n_samples,))
    gammas = gammas.clamp_min(torch.finfo(conc.dtype).tiny) * mask
    rows = (gammas / gammas.sum(-1, keepdim=True)).to(scores.dtype)
    total = (conc * mask).sum(-1)
    count = mask.sum(-1).to(conc.dtype)
    kl = (
        torch.lgamma(total)
        - (torch.lgamma(conc) * mask).sum(-1)
        - torch.lgamma(count)
        + ((conc - 1) * (torch.digamma(conc) - torch.digamma(total)[..., None]) * mask).sum(-1)
    )
    return rows, kl.sum().to(scores.dtype)


def _marginals(method, scores, mask, tau, n_iter, perm, n_samples) -> torch.Tensor:
    if method == "naive":
        return torch.softmax(scores, dim=-1)  # the Dirichlets' means
    if method == "map":
        return sinkhorn(scores, n_iter=max(n_iter, 200), tau=tau, mask=mask)  # rows sum to 1 too
    if n_samples == 0:
        return torch.nn.functional.one_hot(perm, scores.shape[-1]).to(scores.dtype)
    return GumbelMatching(scores).sample((n_samples,)).mean(0)
