"""The ranking task on the task contract: registry, config round trip, clear errors, and (with
MNIST) tiny runs that learn to rank, weights that round trip, losses that reach the CNN."""

import dataclasses
import os

import pytest

from gumbel_sinkhorn.configs import FitConfig
from gumbel_sinkhorn.configs.ranking import RankingConfig
from gumbel_sinkhorn.errors import InvalidValueError
from gumbel_sinkhorn.tasks import task_class

torch = pytest.importorskip("torch")

TINY = dict(n=(3,), digits=1, items=12, steps_per_epoch=2, val_n=(3,), val_sets=4, width=2,
            hidden=8)  # fmt: skip
SMALL = dict(digits=1, n=(3, 5), width=4, hidden=16, items=40, val_n=(5,), val_sets=100)
HEADS = ("sinkhorn", "neuralsort", "classic")
needs_mnist = pytest.mark.skipif(
    not os.environ.get("GUMBEL_SINKHORN_DATA"), reason="needs MNIST ($GUMBEL_SINKHORN_DATA)"
)


@pytest.fixture
def one_thread():
    """Tiny convolutions: one thread is fastest, most of all on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_task_registers():
    from gumbel_sinkhorn.tasks.ranking import RankingTask

    assert task_class("ranking") is RankingTask


def test_config_round_trip_and_old_flat_names():
    cfg = RankingConfig(n=(3, 5), head="neuralsort", loss_kind="reconstruction")
    assert RankingConfig.from_dict(cfg.to_dict()) == cfg
    old = RankingConfig.from_dict({"n": [3], "tau": 0.5, "loss": "permutation"})
    assert old.sampling.tau == 0.5 and old.n == (3,)
    # configs written before the places CNN and the unstandardised head read as they were
    assert old.cnn == "digit" and old.standardise and old.symbols == 10


@pytest.mark.parametrize(
    "options",
    [dict(n=1), dict(n=(3, 1)), dict(digits=0), dict(head="classic", n=(3, 5)), dict(head="x"),
     dict(shift=-1), dict(shift=14), dict(shift=1.5), dict(symbols=1),
     dict(cnn="places", skip=True), dict(head="neuralsort", standardise=False)],
)  # fmt: skip
def test_bad_options_are_invalid_value_errors(options):
    with pytest.raises(InvalidValueError):
        RankingConfig(**options)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(head="classic", n=(3, 5)), "classic head ranks sets of one size"),
        (dict(n=(1, 5)), "n \\(items per set\\) must be an integer >= 2"),
        (dict(loss_kind="l1"), "loss_kind must be one of"),
    ],
)
def test_bad_options_say_what_is_wrong(options, message):
    with pytest.raises(InvalidValueError, match=message):
        RankingConfig(**options)


def test_a_missing_model_names_the_shipped_ones():
    from gumbel_sinkhorn.pretrained import load_model

    with pytest.raises(InvalidValueError, match="nor a shipped model.*rank-sinkhorn"):
        load_model("rank-nothing")


@needs_mnist
def test_tiny_fit_runs_and_saved_weights_load(tmp_path, one_thread):
    from gumbel_sinkhorn.checkpoint import save_weights
    from gumbel_sinkhorn.pretrained import load_model
    from gumbel_sinkhorn.train import fit

    task = task_class("ranking").create(**TINY)
    result = fit(task, tmp_path / "run", FitConfig(epochs=1), progress=False, device="cpu")
    assert set(result.metrics) >= {"val_exact_match_n3", "val_elementwise_n3"}
    path = save_weights(tmp_path / "rank.pt", task, result.model.cpu(), result.metrics)
    loaded, model, metrics = load_model(path)
    assert loaded.config == task.config and "val_exact_match_n3" in metrics


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Every head trained for a few seconds on one-digit numbers: ranking supervision alone."""
    from gumbel_sinkhorn.tasks.ranking import RankingTask
    from gumbel_sinkhorn.train import fit

    runs, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for head in HEADS:
            n = (5,) if head == "classic" else SMALL["n"]
            task = RankingTask.create(head=head, **{**SMALL, "n": n}, steps_per_epoch=40)
            run = tmp_path_factory.mktemp(head)
            result = fit(task, run, FitConfig(epochs=2, lr=3e-3), progress=False, device="cpu")
            runs[head] = (task, run, result.history)
    finally:
        torch.set_num_threads(threads)
    return runs


@needs_mnist
@pytest.mark.parametrize("head", HEADS)
def test_a_tiny_run_learns_to_rank(trained, head, one_thread):
    from gumbel_sinkhorn.pretrained import load_model
    from gumbel_sinkhorn.tasks.ranking import evaluate_sets

    task, run, history = trained[head]
    assert history[-1]["loss"] < history[0]["loss"]
    _, model, _ = load_model(run)
    untrained = evaluate_sets(task.build_model().eval(), "val", 5, 300, 1, seed=7)
    learned = evaluate_sets(model, "val", 5, 300, 1, seed=7)
    assert learned["elementwise"] > max(0.5, untrained["elementwise"] + 0.2), (untrained, learned)


@needs_mnist
def test_a_scorer_trained_on_small_sets_ranks_larger_ones(trained, one_thread):
    from gumbel_sinkhorn.pretrained import load_model
    from gumbel_sinkhorn.tasks.ranking import evaluate_sets

    _, run, _ = trained["sinkhorn"]
    model = load_model(run)[1]
    assert evaluate_sets(model, "test", 9, 200, 1, seed=0)["elementwise"] > 0.3  # chance: 1/9


@needs_mnist
def test_weights_round_trip_and_test_sets_are_fixed(trained, tmp_path, one_thread):
    from gumbel_sinkhorn.checkpoint import save_weights
    from gumbel_sinkhorn.pretrained import load_model
    from gumbel_sinkhorn.tasks.ranking import evaluate_sets

    task, run, _ = trained["sinkhorn"]
    _, model, _ = load_model(run)
    path = save_weights(tmp_path / "w.pt", task, model, {"note": 1.0})
    task2, model2, metrics = load_model(path)
    assert task2.config == task.config and metrics == {"note": 1.0}
    assert evaluate_sets(model, "test", 7, 100, 1, 3) == evaluate_sets(model2, "test", 7, 100, 1, 3)


@needs_mnist
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("kind", ["permutation", "reconstruction"])
@pytest.mark.parametrize("cnn", ["digit", "places"])
def test_losses_are_finite_and_reach_the_cnn(head, kind, cnn, one_thread):
    from gumbel_sinkhorn.tasks.ranking import RankingTask

    sampling = dataclasses.replace(RankingConfig().sampling, n_samples=3)
    task = RankingTask.create(head=head, loss_kind=kind, cnn=cnn, **{**SMALL, "n": (4,)},
                              sampling=sampling, steps_per_epoch=1)  # fmt: skip
    model = task.build_model()
    loss = task.loss(model, task.train_batches(0, torch.Generator().manual_seed(0))[0])
    loss.backward()
    grad = model.cnn.digit[0].weight.grad
    assert loss.isfinite() and grad is not None and grad.abs().sum() > 0


@needs_mnist
def test_neuralsort_loss_is_the_cross_entropy_of_its_matrix(one_thread):
    from gumbel_sinkhorn.data.multidigit import compose
    from gumbel_sinkhorn.nn.ranking import neuralsort
    from gumbel_sinkhorn.tasks.ranking import RankingTask, split

    task = RankingTask.create(head="neuralsort", **{**SMALL, "n": (4,)}, steps_per_epoch=1)
    model = task.build_model()
    batch = task.train_batches(0, torch.Generator().manual_seed(0))[0]
    scores = model.scores(compose(split("train"), batch.index))
    P = neuralsort(scores, task.config.sampling.tau)  # row i: the i-th largest
    order = batch.ranks.argsort(-1).flip(-1)  # the true item at each rank, largest first
    expected = -P.gather(-1, order.unsqueeze(-1)).log().mean()
    torch.testing.assert_close(task.loss(model, batch), expected)


@needs_mnist
def test_a_perfect_scorer_scores_one():
    from gumbel_sinkhorn.data.multidigit import compose, sample_sets
    from gumbel_sinkhorn.tasks.ranking import predict_ranks, score_ranks, split

    sets = sample_sets(split("test"), 50, 9, 1, generator=torch.Generator().manual_seed(0))

    class Oracle(torch.nn.Module):  # log_alpha from the true numbers: must rank perfectly
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return -(torch.as_tensor(sets.numbers, dtype=x.dtype).unsqueeze(-1)
                     - torch.arange(9.0).mul(1000 / 8)).square()  # fmt: skip

    predicted = predict_ranks(Oracle(), compose(split("test"), sets.index))
    assert score_ranks(predicted, sets.ranks) == {"exact_match": 1.0, "elementwise": 1.0}


@needs_mnist
def test_more_items_per_set_than_the_digits_can_show_is_a_clear_error():
    from gumbel_sinkhorn.tasks.ranking import RankingTask

    task = RankingTask.create(**{**SMALL, "n": (11,)}, steps_per_epoch=1)
    with pytest.raises(ValueError, match="only 10"):
        task.train_batches(0, torch.Generator())


@needs_mnist
def test_shifted_training_pictures_are_drawn_from_the_seed_and_only_with_shift(one_thread):
    from gumbel_sinkhorn.tasks.ranking import RankingTask

    plain = RankingTask.create(**SMALL, steps_per_epoch=2)
    batches = plain.train_batches(0, torch.Generator().manual_seed(0))
    assert all(b.shifts is None for b in batches)
    task = RankingTask.create(**SMALL, steps_per_epoch=2, shift=2)
    first = task.train_batches(0, torch.Generator().manual_seed(0))
    again = task.train_batches(0, torch.Generator().manual_seed(0))
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a.shifts, b.shifts) and torch.equal(a.index, b.index)
    shifts = torch.cat([b.shifts.flatten() for b in first])
    assert shifts.abs().max() == 2 and set(shifts.tolist()) == {-2, -1, 0, 1, 2}
    assert first[0].shifts.shape == (*first[0].index.shape, 2)
    model = task.build_model()
    torch.manual_seed(0)
    moved = task.loss(model, first[0])
    torch.manual_seed(0)
    still = task.loss(model, first[0]._replace(shifts=torch.zeros_like(first[0].shifts)))
    torch.manual_seed(0)
    assert torch.equal(still, task.loss(model, first[0]._replace(shifts=None)))
    assert moved.isfinite() and not torch.equal(moved, still)
