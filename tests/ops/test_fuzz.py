"""Bad input everywhere: the operators fuzzed over shapes, dtypes, values and memory layouts.

Every call either returns a correct result or raises a ValueError / TypeError: no other exception,
no NaN that the input did not hold, no hang (every call here is small and bounded).
"""

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from gumbel_sinkhorn import metrics, ops

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
INTS = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
SPECIAL = [0.0, -0.0, 1e-45, -1e-45, 1e-300, 1e4, -1e4, 1e38, -1e38, 3e38, 1e300, -1e300]
NON_FINITE = [math.nan, math.inf, -math.inf]
CLEAR = (ValueError, TypeError)


@st.composite
def layouts(draw, tensor):
    """The same values as ``tensor``, maybe stored transposed, strided or expanded."""
    kind = draw(st.sampled_from(["contiguous", "transposed", "strided", "expanded"]))
    if kind == "transposed" and tensor.dim() >= 2:
        return tensor.mT.contiguous().mT
    if kind == "strided":
        wide = torch.zeros(*tensor.shape[:-1], 2 * tensor.shape[-1], dtype=tensor.dtype)
        wide[..., ::2] = tensor
        return wide[..., ::2]
    if kind == "expanded" and tensor.dim() >= 1 and tensor.shape[0] == 1:
        return tensor[:1].expand(3, *tensor.shape[1:])
    return tensor


@st.composite
def score_tensors(draw, *, square=True):
    """Float tensors (..., N, M) holding ordinary, tiny, huge and non-finite numbers."""
    batch = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    n = draw(st.integers(0, 4))
    m = n if square else draw(st.integers(0, 4))
    dtype = draw(st.sampled_from(FLOATS))
    shape = batch + (n, m)
    count = math.prod(shape)
    ordinary = st.floats(-30, 30, allow_nan=False)
    pick = st.one_of(ordinary, ordinary, ordinary, st.sampled_from(SPECIAL + NON_FINITE))
    values = draw(st.lists(pick, min_size=count, max_size=count))
    tensor = torch.tensor(values, dtype=torch.float64).reshape(shape).to(dtype)
    return draw(layouts(tensor))


def _call(fn, *args, **kwargs):
    """``fn``'s result, or None when it raised a clear error; anything else fails the test."""
    try:
        return fn(*args, **kwargs)
    except CLEAR as err:
        assert str(err), "an error without a message"
        return None


def _no_new_nan(out, x):
    if out is not None and out.is_floating_point() and not torch.isnan(x).any():
        assert not torch.isnan(out).any(), "NaN from an input without NaN"


@given(score_tensors(square=False), st.sampled_from([1e-30, 1e-3, 0.1, 1.0, 1e30]))
@example(torch.tensor([[1e38, -1e38], [-1e38, 1e38]]), 1e-30)  # once overflowed into NaN
@example(torch.tensor([[-math.inf, 0.0], [-math.inf, 0.0]]), 1.0)  # an empty column
@example(torch.tensor([[0.0, 0.0], [-1e38, -1e38]]), 1e-30)  # a row that / tau made all -inf
def test_sinkhorn_returns_a_transport_plan_or_refuses(x, tau):
    P = _call(ops.sinkhorn, x, n_iter=5, tau=tau)
    _no_new_nan(P, x)
    if P is None:
        return
    assert P.shape == x.shape and P.dtype == x.dtype
    P = P.double()
    assert ((P >= 0) & (P <= 1 + 1e-2)).all()
    # columns sum to 1 (at most 1 when fewer real rows than columns) after the last column step;
    # padding lines (all -inf) are 0
    columns = P.sum(-2)
    real_rows, real_columns = (x > -math.inf).any(-1), (x > -math.inf).any(-2)
    assert (columns <= 1 + 2e-2).all()
    full = real_columns & (real_rows.sum(-1) == real_columns.sum(-1)).unsqueeze(-1)
    torch.testing.assert_close(columns[full], torch.ones_like(columns)[full], atol=2e-2, rtol=0)
    log_P = _call(ops.log_sinkhorn, x, n_iter=5, tau=tau)
    assert log_P is not None and not torch.isnan(log_P).any()


@given(score_tensors())
def test_matching_returns_a_permutation_avoiding_forbidden_pairs_or_refuses(x):
    perm = _call(ops.matching, x)
    if perm is None:
        return
    assert perm.shape == x.shape[:-1] and perm.dtype == torch.int64
    n = x.shape[-1]
    assert torch.equal(perm.sort(-1).values, torch.arange(n).expand_as(perm))
    chosen = x.gather(-1, perm.unsqueeze(-1))
    assert (chosen > -math.inf).all()


@given(score_tensors(), st.integers(1, 3), st.sampled_from([0.0, 1.0]))
@example(torch.tensor([[1e38, -1e38], [1e38, -1e38]]), 1, 1.0)  # once overflowed into NaN
def test_gumbel_operators_give_samples_or_refuse(x, n_samples, noise):
    gen = torch.Generator().manual_seed(0)
    P = _call(ops.gumbel_sinkhorn, x, tau=0.5, n_iter=5, n_samples=n_samples, noise_factor=noise,
              generator=gen)  # fmt: skip
    _no_new_nan(P, x)
    if P is not None:
        assert P.shape == ((n_samples,) if n_samples > 1 else ()) + x.shape
    perm = _call(ops.gumbel_matching, x, n_samples=n_samples, generator=gen)
    if perm is not None:
        n = x.shape[-1]
        assert torch.equal(perm.sort(-1).values, torch.arange(n).expand_as(perm))


@given(score_tensors())
def test_permutation_indices_are_row_argmaxes_or_refused(P):
    perm = _call(ops.permutation_indices, P)
    if perm is not None:
        assert perm.shape == P.shape[:-1]
        assert ((perm >= 0) & (perm < P.shape[-1])).all()


@st.composite
def index_tensors(draw):
    """Integer tensors (..., N): permutations, or not (out of range, negative, repeated)."""
    batch = tuple(draw(st.lists(st.integers(0, 2), max_size=2)))
    n = draw(st.integers(0, 5))
    dtype = draw(st.sampled_from(INTS))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    perm = torch.rand(*batch, n, generator=gen).argsort(-1)
    kind = draw(st.sampled_from(["permutation", "permutation", "out of range", "repeat"]))
    if perm.numel() and kind == "out of range":
        perm.view(-1)[0] = draw(st.sampled_from([-1, n, 100]))
    if perm.numel() and n > 1 and kind == "repeat":
        perm[..., 0] = perm[..., 1]
    if dtype == torch.uint8:
        perm = perm.clamp(min=0)
    return draw(layouts(perm.to(dtype)))


def _is_permutation(perm):
    n = perm.shape[-1]
    return torch.equal(perm.long().sort(-1).values, torch.arange(n).expand(perm.shape))


@given(index_tensors())
def test_permutation_helpers_are_exact_or_refuse(perm):
    n = perm.shape[-1]
    valid = _is_permutation(perm)
    in_range = bool(((perm.long() >= 0) & (perm.long() < n)).all())
    P = _call(ops.permutation_matrix, perm)
    assert (P is not None) == in_range
    if P is not None:
        assert torch.equal(P.argmax(-1) if n else perm.long(), perm.long())
        assert (P.sum(-1) == 1).all()
    inverse = _call(ops.invert_permutation, perm)
    assert (inverse is not None) == valid
    if inverse is not None:
        assert torch.equal(inverse.gather(-1, perm.long()), torch.arange(n).expand(perm.shape))
    x = torch.randn(*perm.shape, 2)
    moved = _call(ops.permute, x, perm)
    assert (moved is not None) == in_range
    if moved is not None:
        assert torch.equal(moved, x.gather(-2, perm.long().unsqueeze(-1).expand(x.shape)))


@given(index_tensors(), st.sampled_from([0, 1, 2**40, 2**62]))
def test_metrics_are_exact_or_refuse(perm, offset):
    pred = perm.long() + offset  # large integers must compare exactly
    true = torch.arange(perm.shape[-1]).expand(perm.shape) + offset
    tau = _call(metrics.kendall_tau, pred, true)
    assert (tau is not None) == (perm.shape[-1] >= 2)
    if tau is not None:
        assert not torch.isnan(tau).any() and ((tau >= -1) & (tau <= 1)).all()
        # true is increasing: tau is 1 exactly for increasing pred (a permutation: pred == true)
        assert torch.equal(tau == 1, (pred[..., 1:] > pred[..., :-1]).all(-1))
    wrong = _call(metrics.prop_wrong, pred, true)
    if wrong is not None:
        torch.testing.assert_close(wrong, (pred != true).float().mean(-1))
    assert _call(metrics.prop_any_wrong, pred, true) is not None


@given(score_tensors(square=False), st.integers(0, 3))
def test_reconstruction_errors_are_finite_or_inf_never_a_new_nan(x, batch_dims):
    y = torch.zeros_like(x).flip(-1) if x.numel() else x
    for error in (metrics.l1_error, metrics.l2_error):
        out = _call(error, x, y, batch_dims=batch_dims)
        _no_new_nan(out, x)


@pytest.mark.parametrize("fn", [ops.sinkhorn, ops.log_sinkhorn, ops.gumbel_sinkhorn])
def test_the_meta_device_gives_shapes(fn):
    x = torch.empty(2, 5, 5, device="meta")
    out = fn(x)
    assert out.device.type == "meta" and out.shape == (2, 5, 5)
    with pytest.raises(ValueError, match="meta device"):
        ops.matching(x)


@pytest.mark.parametrize(
    "call",
    [
        lambda: ops.sample_gumbel((-1, 2)),
        lambda: ops.sample_gumbel("shape"),
        lambda: ops.sample_gumbel((2,), dtype=torch.int64),
        lambda: ops.sample_gumbel((2,), generator="seed"),
        lambda: ops.random_permutation(-1, 3),
        lambda: ops.random_permutation(2, 0),
        lambda: ops.sinkhorn(torch.zeros(2, 2), n_iter=0),
        lambda: ops.sinkhorn(torch.zeros(2, 2), tau=math.nan),
        lambda: ops.sinkhorn([[0.0, 1.0], [1.0, 0.0]]),
        lambda: ops.gumbel_sinkhorn(torch.zeros(2, 2), noise_factor=-1),
        lambda: ops.permute(torch.zeros(3), torch.tensor([0, 1, 2]), dim=5),
        lambda: metrics.l1_error(torch.zeros(2, 0), torch.zeros(2, 0)),
    ],
)
def test_bad_arguments_are_clear_errors(call):
    with pytest.raises(CLEAR):
        call()
