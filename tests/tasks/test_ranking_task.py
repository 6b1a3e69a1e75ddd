import dataclasses
import os

import pytest
import torch

from gumbel_sinkhorn.data.multidigit import compose, sample_sets
from gumbel_sinkhorn.tasks.ranking import (
    RankingTask,
    evaluate_sets,
    load_model,
    predict_ranks,
    save_weights,
    score_ranks,
    split,
)
from gumbel_sinkhorn.train import fit

pytestmark = pytest.mark.skipif(
    not os.environ.get("GUMBEL_SINKHORN_DATA"), reason="needs MNIST ($GUMBEL_SINKHORN_DATA)"
)
SMALL = dict(digits=1, n=(3, 5), width=4, hidden=16, items=40, val_n=(5,), val_sets=100)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Every head trained for a few seconds on one-digit numbers: ranking supervision alone."""
    runs, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread is fastest, most of all on a busy CPU
    try:
        for head in ("sinkhorn", "neuralsort", "classic"):
            n = (5,) if head == "classic" else SMALL["n"]
            task = RankingTask(head=head, **{**SMALL, "n": n}, steps_per_epoch=40)
            run = tmp_path_factory.mktemp(head)
            history = fit(task, run, epochs=2, lr=3e-3, progress=False, device="cpu")
            runs[head] = (task, run, history)
    finally:
        torch.set_num_threads(threads)
    return runs


@pytest.mark.parametrize("head", ["sinkhorn", "neuralsort", "classic"])
def test_a_tiny_run_learns_to_rank(trained, head):
    task, run, history = trained[head]
    assert history[-1]["loss"] < history[0]["loss"]
    _, model, _ = load_model(run)
    untrained = evaluate_sets(task.build_model().eval(), "val", 5, 300, 1, seed=7)
    learned = evaluate_sets(model, "val", 5, 300, 1, seed=7)
    assert learned["elementwise"] > max(0.5, untrained["elementwise"] + 0.2), (untrained, learned)


def test_a_scorer_trained_on_small_sets_ranks_larger_ones(trained):
    _, run, _ = trained["sinkhorn"]
    model = load_model(run)[1]
    assert evaluate_sets(model, "test", 9, 200, 1, seed=0)["elementwise"] > 0.3  # chance: 1/9


def test_weights_round_trip_and_test_sets_are_fixed(trained, tmp_path):
    task, run, _ = trained["sinkhorn"]
    _, model, _ = load_model(run)
    path = save_weights(tmp_path / "w.pt", task, model, {"note": 1.0})
    task2, model2, metrics = load_model(path)
    assert task2 == task and metrics == {"note": 1.0}
    assert evaluate_sets(model, "test", 7, 100, 1, 3) == evaluate_sets(model2, "test", 7, 100, 1, 3)


def test_losses_are_finite_and_reach_the_cnn():
    gen = torch.Generator().manual_seed(0)
    for head in ("sinkhorn", "neuralsort", "classic"):
        for kind in ("permutation", "reconstruction"):
            task = RankingTask(head=head, loss_kind=kind, **{**SMALL, "n": (4,)}, n_samples=3,
                               steps_per_epoch=1)
            model = task.build_model()
            loss = task.loss(model, task.train_batches(0, gen)[0])
            loss.backward()
            grad = model.cnn.digit[0].weight.grad
            assert loss.isfinite() and grad is not None and grad.abs().sum() > 0, (head, kind)


def test_neuralsort_loss_is_the_cross_entropy_of_its_matrix():
    task = RankingTask(head="neuralsort", **{**SMALL, "n": (4,)}, steps_per_epoch=1)
    model = task.build_model()
    batch = task.train_batches(0, torch.Generator().manual_seed(0))[0]
    from gumbel_sinkhorn.nn.ranking import neuralsort

    scores = model.scores(compose(split("train"), batch.index))
    P = neuralsort(scores, task.tau)  # row i: the i-th largest
    order = batch.ranks.argsort(-1).flip(-1)  # the true item at each rank, largest first
    expected = -P.gather(-1, order.unsqueeze(-1)).log().mean()
    torch.testing.assert_close(task.loss(model, batch), expected)


def test_a_perfect_scorer_scores_one():
    sets = sample_sets(split("test"), 50, 9, 1, generator=torch.Generator().manual_seed(0))

    class Oracle(torch.nn.Module):  # log_alpha from the true numbers: must rank perfectly
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return -(torch.as_tensor(sets.numbers, dtype=x.dtype).unsqueeze(-1)
                     - torch.arange(9.0).mul(1000 / 8)).square()

    assert score_ranks(predict_ranks(Oracle(), compose(split("test"), sets.index)), sets.ranks) \
        == {"exact_match": 1.0, "elementwise": 1.0}


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="classic head ranks sets of one size"):
        RankingTask(head="classic", n=(3, 5))
    with pytest.raises(ValueError, match="n \\(items per set\\) must be >= 2"):
        RankingTask(n=(1, 5))
    with pytest.raises(ValueError, match="loss_kind must be one of"):
        RankingTask(loss_kind="l1")
    with pytest.raises(FileNotFoundError, match="nor a shipped ranking model .*rank-sinkhorn"):
        load_model("rank-nothing")
    task = dataclasses.replace(RankingTask(**SMALL, steps_per_epoch=1), n=(11,))
    with pytest.raises(ValueError, match="only 10"):
        task.train_batches(0, torch.Generator())
