"""The ranking task on the task contract: registry, a tiny fit, config round trip, clear errors."""

import pytest

from gumbel_sinkhorn.configs import FitConfig
from gumbel_sinkhorn.configs.ranking import RankingConfig
from gumbel_sinkhorn.errors import InvalidValueError
from gumbel_sinkhorn.tasks import task_class

pytest.importorskip("torch")

TINY = dict(n=(3,), digits=1, items=12, steps_per_epoch=2, val_n=(3,), val_sets=4, width=2,
            hidden=8)  # fmt: skip


def test_the_task_registers():
    from gumbel_sinkhorn.tasks.ranking import RankingTask

    assert task_class("ranking") is RankingTask


def test_config_round_trip_and_old_flat_names():
    cfg = RankingConfig(n=(3, 5), head="neuralsort", loss_kind="reconstruction")
    assert RankingConfig.from_dict(cfg.to_dict()) == cfg
    old = RankingConfig.from_dict({"n": [3], "tau": 0.5, "loss": "permutation"})
    assert old.sampling.tau == 0.5 and old.n == (3,)


@pytest.mark.parametrize(
    "options",
    [dict(n=1), dict(n=(3, 1)), dict(digits=0), dict(head="classic", n=(3, 5)), dict(head="x")],
)
def test_bad_options_are_invalid_value_errors(options):
    with pytest.raises(InvalidValueError):
        RankingConfig(**options)


def test_tiny_fit_runs_and_saved_weights_load(tmp_path, monkeypatch):
    monkeypatch.setenv("GUMBEL_SINKHORN_DATA", "/work/shared/data")
    from gumbel_sinkhorn.checkpoint import save_weights
    from gumbel_sinkhorn.pretrained import load_model
    from gumbel_sinkhorn.train import fit

    task = task_class("ranking").create(**TINY)
    result = fit(task, tmp_path / "run", FitConfig(epochs=1), progress=False, device="cpu")
    assert set(result.metrics) >= {"val_exact_match_n3", "val_elementwise_n3"}
    path = save_weights(tmp_path / "rank.pt", task, result.model.cpu(), result.metrics)
    loaded, model, metrics = load_model(path)
    assert loaded.config == task.config and "val_exact_match_n3" in metrics
