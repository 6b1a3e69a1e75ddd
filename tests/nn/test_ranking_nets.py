import itertools
import math

import pytest
import torch

from gumbel_sinkhorn.nn.ranking import (
    DigitCNN,
    PlaceValueCNN,
    ProtocolCNN,
    RankingNet,
    neuralsort,
    rank_scores,
)
from gumbel_sinkhorn.ops import matching, sinkhorn


def neuralsort_by_hand(s: list[float], tau: float) -> list[list[float]]:
    """Grover et al.'s eq. 5 written out entry by entry, ranks i = 1 ... n."""
    n = len(s)
    rows = []
    for i in range(1, n + 1):
        logits = [
            ((n + 1 - 2 * i) * s[k] - sum(abs(s[k] - s[m]) for m in range(n))) / tau
            for k in range(n)
        ]
        top = max(logits)
        weights = [math.exp(v - top) for v in logits]
        rows.append([w / sum(weights) for w in weights])
    return rows


@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("tau", [0.3, 1.0, 4.0])
def test_neuralsort_is_its_published_formula(n, tau):
    gen = torch.Generator().manual_seed(n)
    s = torch.randn(4, n, generator=gen, dtype=torch.float64) * 2
    P = neuralsort(s, tau)
    by_hand = [neuralsort_by_hand(row.tolist(), tau) for row in s]
    expected = torch.tensor(by_hand, dtype=torch.float64)
    torch.testing.assert_close(P, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(neuralsort(s, tau, log=True).exp(), P)


def test_neuralsort_rows_pick_the_sorted_items_and_harden_as_tau_drops():
    s = torch.randn(50, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    descending = s.argsort(-1, descending=True)
    assert torch.equal(neuralsort(s, 1.0).argmax(-1), descending)  # the sort, at any tau
    hard = torch.nn.functional.one_hot(descending, 6).double()
    assert (neuralsort(s, 1e-6) - hard).abs().max() < 1e-6
    assert not torch.allclose(neuralsort(s, 1.0), hard, atol=1e-2)


def test_rank_scores_sort_any_scores_by_construction():
    gen = torch.Generator().manual_seed(1)
    for n in (2, 3, 7, 15, 32):
        s = torch.randn(30, n, generator=gen, dtype=torch.float64)
        for scale, shift in ((1.0, 0.0), (1e-3, 5.0), (40.0, -3.0)):
            for standardise in (True, False):
                log_alpha = rank_scores(
                    scale * s + shift, log_scale=torch.tensor(2.0), standardise=standardise
                )
                assert torch.equal(matching(log_alpha), s.argsort(-1).argsort(-1))


def test_rank_scores_against_all_permutations():
    s = torch.tensor([0.4, -1.0, 2.5, 0.0, 0.3], dtype=torch.float64)
    log_alpha = rank_scores(s, 0.7)
    totals = {
        p: sum(log_alpha[i, p[i]].item() for i in range(5))
        for p in itertools.permutations(range(5))
    }
    assert max(totals, key=totals.get) == tuple(s.argsort().argsort().tolist())


def test_unstandardised_rank_scores_are_centred_scores_and_their_scale_counts():
    s = torch.tensor([[3.0, -1.0, 0.5, 10.0]], dtype=torch.float64)
    u = s - s.mean()
    r = torch.arange(4, dtype=torch.float64) - 1.5
    expected = -2.0 * (u.unsqueeze(-1) - r).square()
    torch.testing.assert_close(rank_scores(s, math.log(2.0), standardise=False), expected)
    # a shift changes nothing; a scale changes what a swap costs (standardised: nothing)
    torch.testing.assert_close(
        rank_scores(s + 7, standardise=False), rank_scores(s, standardise=False)
    )

    def swap_cost(log_alpha):  # items 1 and 2 (ranks 0 and 1) exchanged
        a = log_alpha[0]
        return (a[1, 0] + a[2, 1] - a[1, 1] - a[2, 0]).item()

    assert swap_cost(rank_scores(3 * s, standardise=False)) == pytest.approx(
        3 * swap_cost(rank_scores(s, standardise=False))
    )
    assert swap_cost(rank_scores(3 * s)) == pytest.approx(swap_cost(rank_scores(s)))
    net = RankingNet("sinkhorn", digits=1, standardise=False)
    x = torch.randn(2, 5, 28, 28, generator=torch.Generator().manual_seed(0))
    expected = rank_scores(net.scores(x), net.log_scale, standardise=False)
    torch.testing.assert_close(net(x), expected)
    assert not torch.allclose(net(x), rank_scores(net.scores(x), net.log_scale))


def test_rank_scores_swapping_neighbours_costs_twice_the_scale_for_every_n():
    for n in (3, 9, 32):
        log_alpha = rank_scores(torch.arange(n, dtype=torch.float64), math.log(1.5))
        right = log_alpha.diagonal().sum()
        swap = right - log_alpha[0, 0] - log_alpha[1, 1] + log_alpha[0, 1] + log_alpha[1, 0]
        assert (right - swap).item() == pytest.approx(3.0)
        # standardised scores sit on the ranks: Sinkhorn starts from a diagonal-heavy matrix
        assert (sinkhorn(log_alpha, n_iter=50).diagonal() > 1 / n).all()


def test_heads_shapes_and_permutation_equivariance():
    x = torch.randn(2, 5, 28, 56, generator=torch.Generator().manual_seed(0))
    perm = torch.tensor([3, 0, 4, 1, 2])
    for head, cnn in itertools.product(("sinkhorn", "classic", "neuralsort"), ("digit", "places")):
        torch.manual_seed(0)
        net = RankingNet(head, digits=2, n=5, cnn=cnn).eval()
        log_alpha = net(x)
        assert log_alpha.shape == (2, 5, 5) and log_alpha.isfinite().all()
        # permuting the items permutes the rows (the sets have no order)
        torch.testing.assert_close(net(x[:, perm]), log_alpha[:, perm], rtol=1e-4, atol=1e-4)
    ns = RankingNet("neuralsort", digits=2)
    assert torch.allclose(ns(x).exp().sum(-2), torch.ones(2, 5))  # each rank picks one item


def test_digit_cnn_reads_every_digit_with_the_same_weights():
    net = DigitCNN(digits=3)
    x = torch.randn(4, 28, 84, generator=torch.Generator().manual_seed(0))
    crops = x.reshape(4, 28, 3, 28).permute(0, 2, 1, 3).reshape(12, 1, 28, 28)
    features = net.digit(crops).reshape(4, -1)
    torch.testing.assert_close(net(x), net.combine(features))


def test_skip_passes_the_digit_features_to_the_head():
    net = DigitCNN(digits=3, skip=True)
    x = torch.randn(4, 28, 84, generator=torch.Generator().manual_seed(0))
    crops = x.reshape(4, 28, 3, 28).permute(0, 2, 1, 3).reshape(12, 1, 28, 28)
    features = net.digit(crops).reshape(4, -1)
    assert net.out_features == net.hidden + 3 * net.features
    torch.testing.assert_close(net(x), torch.cat([net.combine(features), features], -1))
    # a score linear in the digit features alone: the head reads the digits without the combiner
    ranker = RankingNet("sinkhorn", digits=3, skip=True)
    assert ranker.out.in_features == ranker.cnn.out_features
    with torch.no_grad():
        ranker.out.weight[:, : net.hidden] = 0
    sets = torch.randn(2, 5, 28, 84, generator=torch.Generator().manual_seed(1))
    digit_part = ranker.out.weight[0, net.hidden :]
    direct = ranker.cnn(sets)[..., net.hidden :] @ digit_part + ranker.out.bias
    torch.testing.assert_close(ranker.scores(sets), direct)


def test_place_values_are_each_digits_expected_symbol_value_and_the_head_weighs_the_places():
    torch.manual_seed(0)
    net = PlaceValueCNN(digits=3, symbols=6)
    x = torch.randn(4, 28, 84, generator=torch.Generator().manual_seed(0))
    crops = x.reshape(4, 28, 3, 28).permute(0, 2, 1, 3).reshape(12, 1, 28, 28)
    for item in range(4):
        for place in range(3):
            p = net.symbol(net.digit(crops[3 * item + place : 3 * item + place + 1])).softmax(-1)
            expected = (p * net.values).sum()
            torch.testing.assert_close(net(x)[item, place], expected)
    # one digit network and one readout for every place: the same digit, the same value
    values = net(x[:, :, :28].repeat(1, 1, 3))
    torch.testing.assert_close(values, values[:, :1].expand(4, 3))
    # a value is a mix of the symbols' values
    assert (values >= net.values.min()).all() and (values <= net.values.max()).all()
    # the "sinkhorn" head's score: one weight per place
    ranker = RankingNet("sinkhorn", digits=3, cnn="places", symbols=6)
    assert ranker.out.in_features == 3
    sets = torch.randn(2, 5, 28, 84, generator=torch.Generator().manual_seed(1))
    places = ranker.cnn(sets)
    expected = places @ ranker.out.weight[0] + ranker.out.bias
    torch.testing.assert_close(ranker.scores(sets), expected)


def test_place_values_order_numbers_when_the_symbols_are_the_digits():
    """Symbols set to the digits and place weights 100 / 10 / 1: the scores are the numbers."""
    net = RankingNet("sinkhorn", digits=3, cnn="places", symbols=10)
    with torch.no_grad():
        net.cnn.values.copy_(torch.arange(10.0))
        net.out.weight.copy_(torch.tensor([[100.0, 10.0, 1.0]]))
        net.out.bias.zero_()
    numbers = torch.tensor([[907, 98, 910, 11, 100]])
    digits = torch.stack([numbers // 100, numbers // 10 % 10, numbers % 10], -1)  # (1, 5, 3)
    # a digit network whose logits are sharp one-hots of the digit: stub it with the labels
    logits = torch.nn.functional.one_hot(digits.flatten(), 10).float() * 50
    net.cnn.symbol = torch.nn.Identity()
    net.cnn.digit = _Lookup(logits)
    pictures = torch.zeros(1, 5, 28, 84)
    torch.testing.assert_close(net.scores(pictures), numbers.float(), rtol=1e-4, atol=1e-3)
    assert matching(net(pictures)).tolist() == [[3, 1, 4, 0, 2]]


class _Lookup(torch.nn.Module):
    """Returns fixed rows in order, one per digit crop (stands in for the digit network)."""

    def __init__(self, rows: torch.Tensor):
        super().__init__()
        self.rows = rows

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        assert crops.shape[0] == self.rows.shape[0]
        return self.rows


def test_bad_shapes_and_options_are_clear_errors():
    with pytest.raises(ValueError, match="skip is an option of the digit CNN"):
        RankingNet("sinkhorn", cnn="protocol", skip=True)
    with pytest.raises(ValueError, match="skip is an option of the digit CNN, not of the 'places'"):
        RankingNet("sinkhorn", cnn="places", skip=True)
    with pytest.raises(ValueError, match="cnn must be one of"):
        RankingNet("sinkhorn", cnn="resnet")
    with pytest.raises(ValueError, match="symbols must be >= 2, got 1"):
        PlaceValueCNN(4, symbols=1)
    with pytest.raises(ValueError, match=r"pictures of 2 digits \(\.\.\., 28, 56\)"):
        PlaceValueCNN(2)(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match=r"pictures of 4 digits \(\.\.\., 28, 112\)"):
        DigitCNN(4)(torch.zeros(2, 28, 56))
    with pytest.raises(ValueError, match="28, 56"):
        ProtocolCNN(2)(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="give n"):
        RankingNet("classic")
    with pytest.raises(ValueError, match="ranks sets of 5 items, got 3"):
        RankingNet("classic", digits=1, n=5)(torch.zeros(1, 3, 28, 28))
    with pytest.raises(ValueError, match="head must be one of"):
        RankingNet("softsort")
    with pytest.raises(ValueError, match="at least 2 items"):
        rank_scores(torch.zeros(3, 1))
