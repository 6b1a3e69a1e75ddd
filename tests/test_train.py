import json
import warnings

import pytest
import torch

from gumbel_sinkhorn import checkpoint, pretrained
from gumbel_sinkhorn.configs import FitConfig
from gumbel_sinkhorn.runs import RunFolder
from gumbel_sinkhorn.train import FitResult, fit, read_run
from toy import LineTask


@pytest.fixture
def line_task():
    return LineTask.create()


def weights(run_dir):
    return checkpoint.load(run_dir / "checkpoint.pt", "checkpoint")["model"]


def test_fit_learns_and_logs_every_epoch(tmp_path, line_task):
    result = fit(line_task, tmp_path, epochs=8, lr=0.1, progress=False)
    assert isinstance(result, FitResult)
    history = result.history
    assert [row["epoch"] for row in history] == list(range(1, 9))
    assert history[-1]["mse"] < 0.01 < 0.1 < history[0]["mse"]
    assert result.metrics == history[-1]
    assert isinstance(result.run, RunFolder) and result.run.path == tmp_path
    assert result.run.metrics == tmp_path / "metrics.jsonl"
    rows = [json.loads(line) for line in result.run.metrics.read_text().splitlines()]
    assert rows == history
    # the returned model is the trained one (eval mode), the very weights of the checkpoint
    assert not result.model.training
    for key, value in weights(tmp_path).items():
        assert torch.equal(value, result.model.state_dict()[key]), key
    assert not list(tmp_path.glob(".*.tmp"))


def test_same_seed_same_weights_and_resume_matches_uninterrupted(tmp_path, line_task):
    fit(line_task, tmp_path / "full", epochs=4, lr=0.05, seed=3, progress=False)
    fit(line_task, tmp_path / "again", epochs=4, lr=0.05, seed=3, progress=False)
    fit(line_task, tmp_path / "split", epochs=2, lr=0.05, seed=3, progress=False)
    history = fit(
        line_task, tmp_path / "split", epochs=4, lr=0.05, seed=3, resume=True, progress=False
    ).history
    assert len(history) == 4
    for name in ("again", "split"):
        for key, value in weights(tmp_path / "full").items():
            assert torch.equal(value, weights(tmp_path / name)[key]), (name, key)
    other = weights(tmp_path / "full")
    fit(line_task, tmp_path / "seed4", epochs=4, lr=0.05, seed=4, progress=False)
    assert not torch.equal(other["weight"], weights(tmp_path / "seed4")["weight"])


def test_more_epochs_on_a_finished_cosine_run_continue_its_new_schedule(tmp_path, line_task):
    done = fit(line_task, tmp_path, epochs=2, lr=0.1, lr_schedule="cosine", progress=False)
    assert [row["lr"] for row in done.history] == pytest.approx([0.1, 0.05])
    more = fit(
        line_task, tmp_path, epochs=4, lr=0.1, lr_schedule="cosine", resume=True, progress=False
    )
    # epochs 3 and 4 follow the 4-epoch cosine from epoch 2 on (before: the first at lr 0)
    assert [row["lr"] for row in more.history[2:]] == pytest.approx([0.05, 0.05 * (1 - 0.5**0.5)])


def test_refuses_to_overwrite_or_resume_a_different_run(tmp_path, line_task):
    fit(line_task, tmp_path, epochs=1, lr=0.1, progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        fit(line_task, tmp_path, epochs=2, lr=0.1, progress=False)
    with pytest.raises(ValueError, match="another experiment: batches: the run has 10, now 2"):
        fit(LineTask.create(batches=2), tmp_path, epochs=2, lr=0.1, resume=True, progress=False)


def test_corrupt_and_foreign_checkpoints_are_rejected(tmp_path, line_task):
    fit(line_task, tmp_path, epochs=1, lr=0.1, progress=False)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        fit(line_task, tmp_path, epochs=2, lr=0.1, resume=True, progress=False)
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a gumbel-sinkhorn checkpoint"):
        checkpoint.load(path, "checkpoint")


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = checkpoint.save(tmp_path / "c.pt", "checkpoint", {"epoch": 1})

    def explode(file):
        file.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        checkpoint.atomic_write(path, explode)
    assert checkpoint.load(path, "checkpoint")["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_non_finite_loss_stops_with_a_clear_error(tmp_path, line_task):
    with pytest.raises(FloatingPointError, match="lower learning rate"):
        fit(line_task, tmp_path, epochs=3, lr=1e30, progress=False)


def test_unwritable_run_folder_is_a_clear_error(tmp_path, line_task):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match="not writable"):
        fit(line_task, blocker / "run", epochs=1, lr=0.1, progress=False)


def test_weights_round_trip_through_load_model(tmp_path, line_task):
    fit(line_task, tmp_path / "run", epochs=2, lr=0.1, progress=False)
    task, model, metrics = pretrained.load_model(tmp_path / "run")
    assert metrics["epoch"] == 2 and not model.training
    path = pretrained.save_weights(tmp_path / "w.pt", task, model, {"mse": 0.5})
    task2, model2, metrics2 = pretrained.load_model(path)
    assert type(task) is type(task2) is LineTask  # the registry found it by its name
    assert metrics2 == {"mse": 0.5} and task2.config == task.config
    assert torch.equal(model2.weight, model.weight)
    with pytest.raises(ValueError, match="neither a file"):
        pretrained.load_model("no-such-model")


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = checkpoint.save(tmp_path / "c.pt", "checkpoint", {"epoch": 1})
        plain = tmp_path / "plain"
        plain.write_bytes(b"")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o644


class DtypeSpy(LineTask):
    """Records the dtype of the model's output in each training step's forward pass."""

    name = "line-dtype-spy"

    def __init__(self, config):
        super().__init__(config)
        self.dtypes = set()

    def loss(self, model, batch):
        x, y = batch
        out = model(x)
        self.dtypes.add(out.dtype)
        return torch.nn.functional.mse_loss(out.float(), y)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_precision_sets_the_dtype_of_the_training_forward(tmp_path, precision):
    task = DtypeSpy.create()
    history = fit(task, tmp_path, epochs=8, lr=0.1, progress=False, precision=precision).history
    assert task.dtypes == {getattr(torch, precision)}
    assert history[-1]["mse"] < 0.02  # it still learns; evaluation runs in float32
    assert all(v.dtype == torch.float32 for v in weights(tmp_path).values())
    with pytest.raises(ValueError, match="precision must be one of"):
        fit(task, tmp_path / "other", epochs=1, lr=0.1, progress=False, precision="float16")


@pytest.mark.parametrize("native", [True, False])
def test_bfloat16_without_hardware_support_warns(tmp_path, monkeypatch, native):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(LineTask.create(), tmp_path, epochs=1, lr=0.1, progress=False, precision="bfloat16")
        fit(LineTask.create(), tmp_path / "f", epochs=1, lr=0.1, progress=False,
            precision="float32")  # fmt: skip
    emulated = [w for w in caught if "emulated" in str(w.message)]
    assert len(emulated) == (0 if native else 1)
    assert all(w.filename == __file__ for w in emulated)  # points at the caller


def test_the_fit_config_is_kept_in_the_checkpoint_for_resuming(tmp_path, line_task):
    fit(line_task, tmp_path / "plain", epochs=1, lr=0.1, progress=False)
    state = read_run(tmp_path / "plain")
    assert state["fit"] == FitConfig(epochs=1, lr=0.1).to_dict()  # every option, defaults too
    assert state["task"] == "line" and state["config"] == line_task.config.to_dict()
    assert "options" not in state
    # a FitConfig and options that override it: what was used is what is kept
    config = FitConfig(epochs=3, lr=0.5, lr_schedule="cosine", grad_clip=1.0)
    fit(line_task, tmp_path / "kept", config, epochs=1, progress=False)
    assert FitConfig.from_dict(read_run(tmp_path / "kept")["fit"]) == config.replace(epochs=1)
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        read_run(tmp_path / "none")
