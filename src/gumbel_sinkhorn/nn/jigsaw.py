"""The Sinkhorn network of Mena et al. (2018, Figure 1) for the pieces of a puzzle."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .. import _checks, ops

CHANNELS_LAST = torch.channels_last


class SinkhornPieceNet(nn.Module):
    """Scores every piece against every position; samples or solves a permutation from them.

    >>> import torch
    >>> net = SinkhornPieceNet(n_pieces=4, piece_size=14)          # the tutorial's 2x2 model
    >>> pieces = torch.rand(8, 4, 1, 14, 14)                       # (batch, N, C, h, w)
    >>> net.scores(pieces).shape                                   # log_alpha, row i = piece i
    torch.Size([8, 4, 4])
    >>> net(pieces).shape                                          # train mode: soft P
    torch.Size([8, 4, 4])
    >>> perm = net.eval().solve(pieces)                            # eval mode: hard matching
    >>> perm.shape, sorted(perm[0].tolist())
    (torch.Size([8, 4]), [0, 1, 2, 3])

    Architecture: ``g1``, a small conv net (``n_conv`` blocks Conv(``kernel``, ``hidden``) -> ReLU,
    the first followed by MaxPool(2) if ``pool``; then BatchNorm), runs on all pieces at once
    (pieces folded into the batch); ``g2`` maps each piece's features to its row of ``N`` scores.

    - ``n_context = 0``: ``g2`` is one linear layer on the flattened features. With ``hidden=32``,
      ``kernel=5``, ``g2_bias=False`` this is the tutorial's ``SinkhornConvNet``.
    - ``n_context > 0``: the features are projected to ``d_model`` and pass through that many
      transformer-encoder layers without positional encoding (the pieces come in random order),
      so each piece sees all the others before ``g2`` scores it: where a piece goes depends on
      which neighbours exist. The scores stay equivariant to the order of the pieces.
    - ``input_power``: g1 also sees each channel's pixels in [0, 1] (the input times
      ``pixel_std`` plus ``pixel_mean``, undoing the normalisation) raised to this power. With
      0.25 the faint fringe of a stroke (pixels at 0.05) looks as strong as the stroke itself,
      and such fringes are often all that tells where an almost blank piece belongs.

    ``forward`` in training mode returns Gumbel-Sinkhorn samples S((log_alpha + noise) / tau)
    (``n_samples`` > 1 stacks the samples first); in eval mode the hard permutation matrix
    M(log_alpha). Reconstruct with ``P.transpose(-1, -2) @ scrambled`` (the pieces flattened).
    """

    def __init__(
        self,
        n_pieces: int,
        piece_size: int | tuple[int, int],
        channels: int = 1,
        *,
        hidden: int = 32,
        kernel: int = 5,
        n_conv: int = 1,
        pool: bool = True,
        g2_bias: bool = False,
        n_context: int = 0,
        d_model: int = 128,
        n_heads: int = 4,
        tau: float = 1.0,
        n_iter: int = 20,
        n_samples: int = 1,
        noise_factor: float = 1.0,
        input_power: float | None = None,
        pixel_mean: float | Sequence[float] = 0.0,
        pixel_std: float | Sequence[float] = 1.0,
    ):
        super().__init__()
        self.n_pieces = _checks.count(n_pieces, "n_pieces", minimum=2)
        h, w = (piece_size, piece_size) if isinstance(piece_size, int) else tuple(piece_size)
        self.piece_shape = (
            _checks.count(channels, "channels"),
            _checks.count(h, "piece height"),
            _checks.count(w, "piece width"),
        )
        kernel = _checks.count(kernel, "kernel")
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (the conv keeps the piece size), got {kernel}")
        n_conv = _checks.count(n_conv, "n_conv")
        hidden = _checks.count(hidden, "hidden")
        n_context = _checks.count(n_context, "n_context", minimum=0)
        if n_context and _checks.count(d_model, "d_model") % _checks.count(n_heads, "n_heads"):
            raise ValueError(f"d_model must be a multiple of n_heads={n_heads}, got {d_model}")
        self.tau = _checks.positive(tau, "tau")
        self.n_iter = _checks.count(n_iter, "n_iter")
        self.n_samples = _checks.count(n_samples, "n_samples")
        self.noise_factor = _checks.non_negative(noise_factor, "noise_factor")

        if input_power is not None:
            input_power = _checks.positive(input_power, "input_power")
        self.input_power = input_power
        if self.input_power is not None:  # how to get pixels in [0, 1] back from the input
            for name, value in (("pixel_mean", pixel_mean), ("pixel_std", pixel_std)):
                value = torch.as_tensor(value, dtype=torch.float32).reshape(-1, 1, 1)
                self.register_buffer(name, value.expand(channels, 1, 1).clone(), persistent=False)

        layers: list[nn.Module] = []
        in_ch = channels if input_power is None else 2 * channels
        for i in range(n_conv):
            layers.append(nn.Conv2d(in_ch, hidden, kernel, padding=kernel // 2))
            if i == 0 and pool:
                layers.append(nn.MaxPool2d(2))
            layers.append(nn.ReLU())
            in_ch = hidden
        layers += [nn.BatchNorm2d(hidden), _FlattenChannelsLast()]
        # channels-last weights: with one input channel the input's layout is ambiguous, and the
        # conv returns channels-last activations (pooled ~5x faster on CPU) only if its weight is
        self.g1 = nn.Sequential(*layers).to(memory_format=CHANNELS_LAST)
        if pool and (h < 2 or w < 2):
            raise ValueError(f"pooling needs pieces of at least 2x2 pixels, got {h}x{w}")
        features = (hidden, h // 2, w // 2) if pool else (hidden, h, w)
        if n_context == 0:
            self.context = nn.Identity()
            self.g2 = _ChannelsLastLinear(features, self.n_pieces, bias=g2_bias)
        else:
            layer = nn.TransformerEncoderLayer(
                d_model, n_heads, 2 * d_model, dropout=0.0, batch_first=True, norm_first=True
            )
            self.context = nn.Sequential(
                _ChannelsLastLinear(features, d_model),
                nn.ReLU(),
                nn.LayerNorm(d_model),
                nn.TransformerEncoder(layer, n_context, enable_nested_tensor=False),
            )
            self.g2 = nn.Linear(d_model, self.n_pieces, bias=g2_bias)

    @property
    def n_context(self) -> int:
        """The number of transformer layers between g1 and g2."""
        return len(_context_layers(self))

    def load_smaller(self, smaller: SinkhornPieceNet) -> None:
        """Copy in a trained network that lacks some of this one's parts, which start neutral.

        The parts this network may add: context layers (each extra pre-norm transformer layer
        gets zeroed output projections, so it passes its input through unchanged) and the
        ``input_power`` channels (zero weights in the first conv). Everything else must match.
        The result scores every puzzle exactly as ``smaller`` does; training goes on from there.

        >>> small = SinkhornPieceNet(4, 14, n_context=1, d_model=16).eval()
        >>> big = SinkhornPieceNet(4, 14, n_context=3, d_model=16, input_power=0.25).eval()
        >>> big.load_smaller(small)
        >>> x = torch.rand(2, 4, 1, 14, 14)
        >>> torch.allclose(big.scores(x), small.scores(x), atol=1e-6)
        True
        """
        have, want = _context_layers(smaller), _context_layers(self)
        if len(want) < len(have) or (want and not have):
            raise ValueError(
                f"cannot load a network with {len(have)} context layers into one with {len(want)}"
            )
        state = self.state_dict()
        for layer in want[len(have) :]:
            prefix = next(k for k, v in self.named_modules() if v is layer) + "."
            for key in (
                "self_attn.out_proj.weight",
                "self_attn.out_proj.bias",
                "linear2.weight",
                "linear2.bias",
            ):
                state[prefix + key] = torch.zeros_like(state[prefix + key])
        first_conv = "g1.0.weight"
        for key, value in smaller.state_dict().items():
            own = state.get(key)
            if own is not None and key == first_conv and own.shape[1] == 2 * value.shape[1]:
                value = torch.cat([value, torch.zeros_like(value)], 1)  # the power channels
            if own is None or own.shape != value.shape:
                shape = None if own is None else tuple(own.shape)
                raise ValueError(f"{key}: {tuple(value.shape)} does not fit this network ({shape})")
            state[key] = value
        self.load_state_dict(state)

    def scores(self, pieces: torch.Tensor) -> torch.Tensor:
        """``log_alpha``: row ``i`` scores piece ``i`` at each of the ``N`` positions.

        Shapes: ``(B, N, C, h, w)`` in, ``(B, N, N)`` out.
        """
        _checks.tensor(pieces, "pieces", floating=True)
        expected = (self.n_pieces, *self.piece_shape)
        if pieces.dim() != 5 or tuple(pieces.shape[1:]) != expected:
            raise ValueError(
                f"pieces must have shape (batch, {', '.join(map(str, expected))}), "
                f"got {tuple(pieces.shape)}"
            )
        b, n = pieces.shape[:2]
        flat = pieces.reshape(b * n, *self.piece_shape)
        if self.input_power is not None:
            pixels = (flat * self.pixel_std + self.pixel_mean).clamp(0, 1)
            flat = torch.cat([flat, pixels.pow(self.input_power)], 1)
        # channels-last: the CPU conv and pooling kernels run about 1.5x faster in that layout
        flat = flat.contiguous(memory_format=CHANNELS_LAST)
        features = self.g1(flat).reshape(b, n, -1)
        return self.g2(self.context(features))

    def forward(self, pieces: torch.Tensor) -> torch.Tensor:
        """Soft permutations (training mode) or hard permutation matrices (eval mode)."""
        log_alpha = self.scores(pieces)
        if not self.training:
            return ops.permutation_matrix(ops.matching(log_alpha), dtype=log_alpha.dtype)
        return ops.gumbel_sinkhorn(
            log_alpha,
            tau=self.tau,
            n_iter=self.n_iter,
            n_samples=self.n_samples,
            noise_factor=self.noise_factor,
        )

    @torch.no_grad()
    def solve(self, pieces: torch.Tensor) -> torch.Tensor:
        """Hard matching: ``perm[b, i]`` = position of scrambled piece ``i``; ``(B, N)`` int64."""
        return ops.matching(self.scores(pieces))


class _FlattenChannelsLast(nn.Module):
    """Flattens maps in their channels-last memory order: (row, column, channel), a free view.

    ``nn.Flatten`` would copy channels-last maps into (channel, row, column) order, and its
    backward would hand BatchNorm a channels-first gradient (a second copy, and BatchNorm's CPU
    backward with mixed layouts is 2-5x slower). ``_ChannelsLastLinear`` consumes the result.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1)


class _ChannelsLastLinear(nn.Linear):
    """``nn.Linear`` on features from ``_FlattenChannelsLast``, its weight in nn.Flatten's order.

    The weight's columns stay in (channel, row, column) order, so a checkpoint means what it
    meant with ``nn.Flatten``; each forward reorders the (small) weight instead of the features.
    """

    def __init__(self, feature_shape: tuple[int, int, int], out_features: int, bias: bool = True):
        super().__init__(feature_shape[0] * feature_shape[1] * feature_shape[2], out_features, bias)
        self.feature_shape = feature_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.unflatten(1, self.feature_shape).permute(0, 2, 3, 1).flatten(1)
        return nn.functional.linear(x, weight, self.bias)


def _context_layers(net: SinkhornPieceNet) -> list[nn.Module]:
    """The transformer layers between g1 and g2 (none when pieces are scored alone)."""
    if isinstance(net.context, nn.Identity):
        return []
    return list(net.context[-1].layers)
