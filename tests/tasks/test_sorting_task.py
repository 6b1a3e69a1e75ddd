import json

import pytest
import torch

from gumbel_sinkhorn.configs import SamplingConfig
from gumbel_sinkhorn.configs.sorting import SortingConfig, SortingNetConfig
from gumbel_sinkhorn.data.numbers import Distribution, sample_lists
from gumbel_sinkhorn.errors import UserError
from gumbel_sinkhorn.tasks import task_class
from gumbel_sinkhorn.tasks.sorting import SortingTask, score
from gumbel_sinkhorn.train import fit

SHIFTED = [
    Distribution(low=0, high=10),
    Distribution(low=1000, high=1001),
    Distribution(low=-5, high=5),
]


@pytest.fixture(scope="module", params=[5, 10])
def trained(request, tmp_path_factory):
    """A model trained on U(0, 1) for a few seconds, never shown a permutation."""
    task = SortingTask.create(n=request.param, steps_per_epoch=40, eval_lists=500)
    run = tmp_path_factory.mktemp(f"sort-{request.param}")
    history = fit(
        task, run, epochs=2, lr=0.1, lr_schedule="cosine", progress=False, device="cpu"
    ).history
    from gumbel_sinkhorn.pretrained import load_model

    return task, load_model(run)[1], history


def test_small_lists_are_sorted_without_errors(trained):
    task, model, history = trained
    assert history[-1]["prop_any_wrong"] == 0.0
    assert history[-1]["kendall_tau"] == 1.0
    assert history[-1]["loss"] < history[0]["loss"]
    fresh = SortingTask(task.config.replace(eval_seed=99))  # other lists than in training
    assert fresh.evaluate(model) == {"prop_wrong": 0.0, "prop_any_wrong": 0.0, "kendall_tau": 1.0}


@pytest.mark.parametrize("test", SHIFTED + [Distribution("normal", mean=-3, std=50)], ids=str)
def test_trained_on_unit_interval_sorts_other_ranges(trained, test):
    task, model, _ = trained
    metrics = SortingTask(task.config.replace(test=test, eval_seed=7)).evaluate(model)
    assert metrics["prop_any_wrong"] == 0.0


def test_metrics_match_a_direct_computation():
    from scipy.stats import kendalltau

    lists = sample_lists(20, 6, generator=torch.Generator().manual_seed(0))
    true_positions = lists.random.argsort(-1).argsort(-1)
    assert torch.equal(lists.positions, true_positions)  # the rank of each number
    guess = true_positions.clone()
    guess[:5, [0, 1]] = guess[:5, [1, 0]]  # 5 lists with two numbers swapped
    metrics = score(guess, lists)
    assert metrics["prop_any_wrong"] == pytest.approx(5 / 20)
    assert metrics["prop_wrong"] == pytest.approx(5 * 2 / (20 * 6))
    expected_tau = sum(kendalltau(g, t)[0] for g, t in zip(guess, true_positions, strict=True)) / 20
    assert metrics["kendall_tau"] == pytest.approx(expected_tau)


def test_predicted_positions_are_permutations():
    task = SortingTask.create(n=7)
    torch.manual_seed(0)
    lists = sample_lists(600, 7, generator=torch.Generator().manual_seed(1))
    model = task.build_model().eval()
    positions = task.predict(model, lists.random)
    assert positions.shape == (600, 7) and positions.dtype == torch.int64
    assert (positions.sort(-1).values == torch.arange(7)).all()
    # chunked scoring changes nothing: the hard matching of the model's scores, item -> slot
    assert torch.equal(task.predict(model, lists.random, chunk_size=64), positions)
    from gumbel_sinkhorn import matching

    with torch.no_grad():
        assert torch.equal(positions, matching(model(lists.random)))


def test_number_lists_name_both_directions_of_the_permutation():
    lists = sample_lists(5, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(lists.ordered, lists.random.gather(-1, lists.order))  # order sorts
    ranks = lists.positions  # where each number goes
    assert torch.equal(lists.ordered.gather(-1, ranks), lists.random)
    with pytest.warns(DeprecationWarning, match="order"):
        assert torch.equal(lists.perm, lists.order)  # the old name, for one release


def test_loss_reads_the_same_for_any_range():
    task = SortingTask.create(n=8, batch_size=4)
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
    task = SortingTask.create(
        n=12, model=SortingNetConfig(kind="mlp", hidden=8), test=Distribution("normal", std=2)
    )
    stored = json.loads(json.dumps(task.config.to_dict()))  # as a checkpoint keeps it
    again = task_class("sorting").from_config(stored)
    assert type(again) is SortingTask and again.config == task.config
    assert isinstance(again.config.test, Distribution) and again.config.model.kind == "mlp"
    assert again.build_model().__class__ is task.build_model().__class__


def test_configs_of_earlier_releases_still_load():
    # the flat config an earlier release stored (dataclasses.asdict of its SortingTask)
    normal = {"kind": "normal", "low": 0.0, "high": 1.0, "mean": 0.0, "std": 2.0}
    uniform = {"kind": "uniform", "low": 0.0, "high": 1.0, "mean": 0.0, "std": 1.0}
    old = {"n": 12, "model": "mlp", "hidden": 8, "standardize": False, "tau": 0.5,
           "n_iter": 15, "n_samples": 3, "noise_factor": 1.0, "batch": 7,
           "steps_per_epoch": 100, "train": uniform, "test": normal, "eval_lists": 1000,
           "eval_seed": 1234}  # fmt: skip
    config = SortingTask.from_config(old).config
    assert config.model == SortingNetConfig(kind="mlp", hidden=8, standardize=False)
    assert config.sampling == SamplingConfig(tau=0.5, n_iter=15, n_samples=3)
    assert config.batch_size == 7 and config.test == Distribution("normal", std=2)
    assert config == SortingConfig.from_dict(config.to_dict())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 1}, "n \\(numbers per list\\) must be an integer >= 2"),
        ({"model": {"kind": "transformer"}}, "model must be one of"),
        ({"tau": 0}, "tau must be"),
        ({"eval_lists": 0}, "eval_lists must be an integer >= 1"),
        ({"batch_size": -3}, "batch_size must be an integer >= 1"),
        ({"batch": -3}, "batch_size must be an integer >= 1"),  # the old name
        ({"train": {"low": 1, "high": 0}}, "low < high"),
        ({"temperature": 1}, "unknown SortingConfig options"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(UserError, match=message):
        SortingTask.from_config(kwargs)
