import dataclasses

import pytest
import torch

from gumbel_sinkhorn.data.numbers import Distribution, sample_lists
from gumbel_sinkhorn.tasks.sorting import SortingTask, predict_positions, score
from gumbel_sinkhorn.train import fit

SHIFTED = [
    Distribution(low=0, high=10),
    Distribution(low=1000, high=1001),
    Distribution(low=-5, high=5),
]


@pytest.fixture(scope="module", params=[5, 10])
def trained(request, tmp_path_factory):
    """A model trained on U(0, 1) for a few seconds, never shown a permutation."""
    task = SortingTask(n=request.param, steps_per_epoch=40, eval_lists=500)
    run = tmp_path_factory.mktemp(f"sort-{request.param}")
    history = fit(task, run, epochs=2, lr=0.1, lr_schedule="cosine", progress=False, device="cpu")
    from gumbel_sinkhorn.pretrained import load_model

    return task, load_model(run)[1], history


def test_small_lists_are_sorted_without_errors(trained):
    task, model, history = trained
    assert history[-1]["prop_any_wrong"] == 0.0
    assert history[-1]["kendall_tau"] == 1.0
    assert history[-1]["loss"] < history[0]["loss"]
    fresh = dataclasses.replace(task, eval_seed=99)  # other held-out lists than during training
    assert fresh.evaluate(model) == {"prop_wrong": 0.0, "prop_any_wrong": 0.0, "kendall_tau": 1.0}


@pytest.mark.parametrize("test", SHIFTED + [Distribution("normal", mean=-3, std=50)], ids=str)
def test_trained_on_unit_interval_sorts_other_ranges(trained, test):
    task, model, _ = trained
    metrics = dataclasses.replace(task, test=test, eval_seed=7).evaluate(model)
    assert metrics["prop_any_wrong"] == 0.0


def test_metrics_match_a_direct_computation():
    from scipy.stats import kendalltau

    lists = sample_lists(20, 6, generator=torch.Generator().manual_seed(0))
    true_positions = lists.random.argsort(-1).argsort(-1)
    guess = true_positions.clone()
    guess[:5, [0, 1]] = guess[:5, [1, 0]]  # 5 lists with two numbers swapped
    metrics = score(guess, lists)
    assert metrics["prop_any_wrong"] == pytest.approx(5 / 20)
    assert metrics["prop_wrong"] == pytest.approx(5 * 2 / (20 * 6))
    expected_tau = sum(kendalltau(g, t)[0] for g, t in zip(guess, true_positions, strict=True)) / 20
    assert metrics["kendall_tau"] == pytest.approx(expected_tau)


def test_predicted_positions_are_permutations():
    task = SortingTask(n=7)
    torch.manual_seed(0)
    lists = sample_lists(600, 7, generator=torch.Generator().manual_seed(1))
    positions = predict_positions(task.build_model().eval(), lists.random)
    assert positions.shape == (600, 7)
    assert (positions.sort(-1).values == torch.arange(7)).all()


def test_loss_reads_the_same_for_any_range():
    task = SortingTask(n=8, batch=4)
    torch.manual_seed(0)
    model = task.build_model()
    lists = sample_lists(4, 8, generator=torch.Generator().manual_seed(0))
    shifted = lists._replace(random=1000 + 3 * lists.random, ordered=1000 + 3 * lists.ordered)
    torch.manual_seed(1)
    a = task.loss(model, lists)
    torch.manual_seed(1)
    b = task.loss(model, shifted)
    assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_config_round_trip():
    task = SortingTask(n=12, model="mlp", hidden=8, test=Distribution("normal", std=2))
    again = SortingTask.from_config(task.config())
    assert again == task and isinstance(again.test, Distribution)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 1}, "n \\(numbers per list\\) must be >= 2"),
        ({"model": "transformer"}, "model must be one of"),
        ({"tau": 0}, "tau must be"),
        ({"eval_lists": 0}, "eval_lists must be >= 1"),
        ({"batch": -3}, "batch must be >= 1"),
        ({"train": {"low": 1, "high": 0}}, "low < high"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SortingTask(**kwargs)
