import itertools
import math

import pytest
import torch

from gumbel_sinkhorn.nn.ranking import DigitCNN, ProtocolCNN, RankingNet, neuralsort, rank_scores
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
            log_alpha = rank_scores(scale * s + shift, log_scale=torch.tensor(2.0))
            assert torch.equal(matching(log_alpha), s.argsort(-1).argsort(-1))


def test_rank_scores_against_all_permutations():
    s = torch.tensor([0.4, -1.0, 2.5, 0.0, 0.3], dtype=torch.float64)
    log_alpha = rank_scores(s, 0.7)
    totals = {
        p: sum(log_alpha[i, p[i]].item() for i in range(5))
        for p in itertools.permutations(range(5))
    }
    assert max(totals, key=totals.get) == tuple(s.argsort().argsort().tolist())


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
    for head in ("sinkhorn", "classic", "neuralsort"):
        torch.manual_seed(0)
        net = RankingNet(head, digits=2, n=5).eval()
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


def test_bad_shapes_and_options_are_clear_errors():
    with pytest.raises(ValueError, match="skip is an option of the digit CNN"):
        RankingNet("sinkhorn", cnn="protocol", skip=True)
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
