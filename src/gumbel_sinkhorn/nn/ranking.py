"""Networks that rank sets of multi-digit pictures: a CNN scores each item, a head makes the
set's ``log_alpha`` (rows: items, columns: ranks, smallest first).

Three heads over the same CNN:

- ``"sinkhorn"`` (ours, :func:`rank_scores`): the n scalar scores of a set, standardised to the
  spacing of the ranks (or only centred), scored by their squared distance to each rank. Sorts
  by construction: hard matching puts the items in the order of their scores.
- ``"classic"``: the head of NeuralSort's table: item i alone gives its row of n rank scores
  (a linear layer on its features), so it never sees the other items.
- ``"neuralsort"`` (:func:`neuralsort`): NeuralSort's deterministic relaxation of the sort
  of the scores, transposed to rows = items; already a (row-stochastic) relaxed permutation.

Three CNNs: :class:`DigitCNN` (one small CNN per digit, an MLP over the digits),
:class:`PlaceValueCNN` (each digit a latent symbol's value, one weight per place) and
:class:`ProtocolCNN` (the published network on the whole picture).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import _checks
from ..configs.ranking import CNNS, HEADS
from ..errors import InvalidValueError

DIGIT = 28  # MNIST digits are 28 x 28


def neuralsort(scores: torch.Tensor, tau: float = 1.0, *, log: bool = False) -> torch.Tensor:
    """NeuralSort's relaxed sort (Grover et al. 2019, eq. 5): row i the soft i-th largest.

    >>> s = torch.tensor([0.3, 2.0, -1.0])
    >>> P = neuralsort(s, tau=0.01)
    >>> P.round()                               # row i picks the i-th largest score
    tensor([[0., 1., 0.],
            [1., 0., 0.],
            [0., 0., 1.]])

    Shapes: ``(..., n)`` scores in, ``(..., n, n)`` out (log-probabilities with ``log=True``).
    Formula: ``P[i, :] = softmax(((n + 1 - 2i) s - A 1) / tau)`` for ranks ``i = 1 … n``, where
    ``A[j, k] = |s_j - s_k|``. Every row sums to 1; the row-wise argmax is the exact sort
    (descending) and ``P`` tends to the sorting permutation matrix as ``tau -> 0``.
    """
    _checks.tensor(scores, "scores", min_dim=1, floating=True)
    tau = _checks.positive(tau, "tau")
    n = scores.shape[-1]
    spread = (scores.unsqueeze(-1) - scores.unsqueeze(-2)).abs().sum(-1)  # (A 1)_k
    weights = n + 1 - 2 * torch.arange(1, n + 1, dtype=scores.dtype, device=scores.device)
    logits = (weights.unsqueeze(-1) * scores.unsqueeze(-2) - spread.unsqueeze(-2)) / tau
    return logits.log_softmax(-1) if log else logits.softmax(-1)


def rank_scores(
    scores: torch.Tensor, log_scale: torch.Tensor | float = 0.0, *, standardise: bool = True
) -> torch.Tensor:
    """Our head: ``log_alpha[..., i, j] = -exp(log_scale) * (u_i - r_j)**2``.

    >>> s = torch.tensor([0.3, 2.0, -1.0, 0.5])
    >>> import gumbel_sinkhorn as gs
    >>> gs.matching(rank_scores(s))             # each item's rank: the order of the scores
    tensor([1, 3, 0, 2])

    Shapes: ``(..., n)`` scores in, ``(..., n, n)`` out (rows: items, columns: ranks, smallest
    first). ``u`` are the scores standardised within their set and stretched to the spread of the
    ranks ``r_j = j - (n - 1) / 2`` (standard deviation ``sqrt((n**2 - 1) / 12)``), so an item
    whose score is k-th smallest sits near rank k, for every n. Expanding the square, only
    ``2 exp(log_scale) u_i r_j`` depends on both the row and the column, so hard matching
    maximises ``sum_i u_i r_perm(i)``: the items in the order of their scores (rearrangement
    inequality). Swapping two neighbours costs about ``2 exp(log_scale)``, whatever n.

    ``standardise=False``: ``u`` are the scores centred only, so their scale is the network's
    to learn, as with NeuralSort's scores: a swap costs ``2 exp(log_scale)`` times the gap of
    the two scores, and a scorer can set far apart the items it is sure of. Needed when the
    scores are linear in what they read (numbers a few units apart among thousands, as the
    places CNN scores them): standardised, such items sit almost on one rank.
    """
    _checks.tensor(scores, "scores", min_dim=1, floating=True)
    n = scores.shape[-1]
    if n < 2:
        raise InvalidValueError(
            f"a set must hold at least 2 items, got shape {tuple(scores.shape)}"
        )
    u = scores - scores.mean(-1, keepdim=True)
    if standardise:
        spread = u.square().mean(-1, keepdim=True).add(1e-12).sqrt()
        u = u / spread * math.sqrt((n * n - 1) / 12)
    r = torch.arange(n, dtype=scores.dtype, device=scores.device) - (n - 1) / 2
    log_scale = torch.as_tensor(log_scale, dtype=scores.dtype, device=scores.device)
    return -log_scale.exp() * (u.unsqueeze(-1) - r).square()


class DigitCNN(nn.Module):
    """Item features from its digits: the same small CNN reads every 28 x 28 digit, an MLP
    combines the ``digits`` digit features into the item's ``hidden`` features.

    >>> net = DigitCNN(digits=4)
    >>> net(torch.zeros(2, 5, 28, 112)).shape
    torch.Size([2, 5, 64])

    Shapes: ``(..., 28, 28·digits)`` pictures in, ``(..., out_features)`` out. Digit network:
    Conv(1, width, 5) -> ReLU -> MaxPool(2) -> Conv(width, 2 width, 5) -> ReLU -> MaxPool(2)
    -> Linear(98 width, features) -> ReLU; combiner: Linear(digits · features, hidden) -> ReLU.
    With ``skip``, the digit features follow the combiner's (``out_features`` = hidden +
    digits · features): a head's linear layer then has a direct path from each digit, so a
    score can weigh the places by orders of magnitude without the combiner's units having to.
    """

    def __init__(
        self,
        digits: int = 4,
        *,
        width: int = 8,
        features: int = 32,
        hidden: int = 64,
        skip: bool = False,
    ):
        super().__init__()
        self.digits = _checks.count(digits, "digits (per number)")
        width = _checks.count(width, "width")
        self.features = _checks.count(features, "features")
        self.hidden = _checks.count(hidden, "hidden")
        self.digit = _digit_reader(width, self.features)
        self.combine = nn.Sequential(nn.Linear(self.digits * self.features, self.hidden), nn.ReLU())
        self.skip = bool(skip)
        self.out_features = self.hidden + (self.digits * self.features if self.skip else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_pictures(x, self.digits)
        lead = x.shape[:-2]
        f = self.digit(_digit_crops(x, self.digits))  # (items · digits, features)
        f = f.reshape(-1, self.digits * self.features)
        out = torch.cat([self.combine(f), f], -1) if self.skip else self.combine(f)
        return out.reshape(*lead, -1)


class PlaceValueCNN(nn.Module):
    """Item features = its digits' values, one per place: the digit network of
    :class:`DigitCNN` reads every digit, a softmax picks one of ``symbols`` latent symbols, and
    the digit's value is the expected learned value of its symbol.

    >>> net = PlaceValueCNN(digits=4)
    >>> net(torch.zeros(2, 5, 28, 112)).shape
    torch.Size([2, 5, 4])

    Shapes: ``(..., 28, 28·digits)`` pictures in, ``(..., digits)`` out (leading place first).
    A head's linear layer then weighs the places, one weight each. Why: a score that orders
    4-digit numbers must resolve the last place's step under the first place's, 1,000 times
    larger, so a digit's value must hardly vary with its handwriting; a confident softmax gives
    every picture of a symbol nearly the same value, where a linear readout of features does
    not. The symbols are latent (no digit labels): which picture gets which symbol, and what a
    symbol is worth, are learned from the rankings alone.
    """

    def __init__(self, digits: int = 4, *, width: int = 8, features: int = 32, symbols: int = 10):
        super().__init__()
        self.digits = self.out_features = _checks.count(digits, "digits (per number)")
        self.features = _checks.count(features, "features")
        self.symbols = _checks.count(symbols, "symbols", minimum=2)
        self.digit = _digit_reader(_checks.count(width, "width"), self.features)
        self.symbol = nn.Linear(self.features, self.symbols)
        self.values = nn.Parameter(torch.linspace(-1.0, 1.0, self.symbols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_pictures(x, self.digits)
        lead = x.shape[:-2]
        choice = self.symbol(self.digit(_digit_crops(x, self.digits))).softmax(-1)
        return (choice @ self.values).reshape(*lead, self.digits)


class ProtocolCNN(nn.Module):
    """The protocol's network on the whole picture (Grover et al. 2019): Conv(1, 32, 5) -> ReLU
    -> MaxPool(2) -> Conv(32, 64, 5) -> ReLU -> MaxPool(2) -> Linear(-, hidden) -> ReLU.

    >>> ProtocolCNN(digits=2)(torch.zeros(3, 28, 56)).shape
    torch.Size([3, 64])

    Shapes: ``(..., 28, 28·digits)`` in, ``(..., hidden)`` out.
    """

    def __init__(self, digits: int = 4, *, hidden: int = 64):
        super().__init__()
        self.digits = _checks.count(digits, "digits (per number)")
        self.hidden = self.out_features = _checks.count(hidden, "hidden")
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (DIGIT // 4) * (DIGIT * self.digits // 4), self.hidden),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_pictures(x, self.digits)
        lead = x.shape[:-2]
        return self.net(x.reshape(-1, 1, *x.shape[-2:])).reshape(*lead, -1)


class RankingNet(nn.Module):
    """A CNN that reads every item of a set, and a head that makes the set's ``log_alpha``.

    >>> import gumbel_sinkhorn as gs
    >>> net = RankingNet("sinkhorn", digits=2)
    >>> x = torch.randn(3, 5, 28, 56)                  # 3 sets of 5 two-digit pictures
    >>> log_alpha = net(x)
    >>> log_alpha.shape
    torch.Size([3, 5, 5])
    >>> torch.equal(gs.matching(log_alpha), net.scores(x).argsort(-1).argsort(-1))
    True

    ``head``: "sinkhorn" (:func:`rank_scores` on one scalar score per item, any n), "classic"
    (a linear layer maps each item's features to its row of ``n`` rank scores: only sets of
    that ``n``) or "neuralsort" (:func:`neuralsort` at temperature ``tau``, log-probabilities,
    transposed to rows = items, ranks smallest first; any n). ``cnn``: "digit"
    (:class:`DigitCNN`, ``width``, ``skip``), "places" (:class:`PlaceValueCNN`, ``width``,
    ``symbols``) or "protocol" (:class:`ProtocolCNN`).

    Shapes: ``(..., n, 28, 28·digits)`` in, ``(..., n, n)`` out: row i item i, column j rank j.
    """

    def __init__(
        self,
        head: str = "sinkhorn",
        digits: int = 4,
        *,
        n: int | None = None,
        cnn: str = "digit",
        width: int = 8,
        hidden: int = 64,
        skip: bool = False,
        symbols: int = 10,
        standardise: bool = True,
        tau: float = 1.0,
    ):
        super().__init__()
        if head not in HEADS:
            raise InvalidValueError(f"head must be one of {HEADS}, got {head!r}")
        self.head = head
        if cnn not in CNNS:
            raise InvalidValueError(f"cnn must be one of {CNNS}, got {cnn!r}")
        if skip and cnn != "digit":
            raise InvalidValueError(f"skip is an option of the digit CNN, not of the {cnn!r} one")
        if cnn == "digit":
            self.cnn = DigitCNN(digits, width=width, hidden=hidden, skip=skip)
        elif cnn == "places":
            self.cnn = PlaceValueCNN(digits, width=width, symbols=symbols)
        else:
            self.cnn = ProtocolCNN(digits, hidden=hidden)
        self.tau = _checks.positive(tau, "tau")
        if head == "classic":
            if n is None:
                raise InvalidValueError("the classic head scores a fixed number of ranks: give n")
            self.n = _checks.count(n, "n (items per set)", minimum=2)
            self.out = nn.Linear(self.cnn.out_features, self.n)
        else:
            self.n = None
            self.out = nn.Linear(self.cnn.out_features, 1)
            if head == "sinkhorn":
                self.log_scale = nn.Parameter(torch.zeros(()))
                self.standardise = bool(standardise)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """One scalar score per item, ``(..., n)`` (the "sinkhorn" and "neuralsort" heads)."""
        if self.head == "classic":
            raise InvalidValueError(
                "the classic head gives every item a row of rank scores, no score"
            )
        return self.out(self.cnn(x)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 4:
            raise InvalidValueError(
                f"expected sets of pictures (..., n, 28, W), got {tuple(x.shape)}"
            )
        n = x.shape[-3]
        if self.head == "classic":
            if n != self.n:
                raise InvalidValueError(f"this classic head ranks sets of {self.n} items, got {n}")
            return self.out(self.cnn(x))
        s = self.scores(x)
        if self.head == "sinkhorn":
            return rank_scores(s, self.log_scale, standardise=self.standardise)
        # rank i of NeuralSort's matrix is the i-th largest: reverse the rows, then transpose
        return neuralsort(s, self.tau, log=True).flip(-2).transpose(-1, -2)


def _digit_reader(width: int, features: int) -> nn.Sequential:
    """The small CNN that reads one 28 x 28 digit: ``(B, 1, 28, 28)`` in, ``(B, features)`` out."""
    return nn.Sequential(
        nn.Conv2d(1, width, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * (DIGIT // 4) ** 2, features),
        nn.ReLU(),
    )


def _digit_crops(x: torch.Tensor, digits: int) -> torch.Tensor:
    """Pictures ``(..., 28, 28·digits)`` cut into their digits, ``(items · digits, 1, 28, 28)``,
    each item's digits together, leading digit first."""
    crops = x.reshape(-1, DIGIT, digits, DIGIT).transpose(1, 2)
    return crops.reshape(-1, 1, DIGIT, DIGIT)


def _check_pictures(x: torch.Tensor, digits: int) -> None:
    """Pictures of ``digits`` MNIST digits side by side: ``(..., 28, 28 * digits)`` floats."""
    _checks.tensor(x, "pictures", min_dim=2, floating=True)
    if tuple(x.shape[-2:]) != (DIGIT, DIGIT * digits):
        raise InvalidValueError(
            f"expected pictures of {digits} digits (..., {DIGIT}, {DIGIT * digits}),"
            f" got shape {tuple(x.shape)}"
        )
