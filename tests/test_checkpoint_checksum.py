"""A flipped bit in a checkpoint or weights file is refused on load, in one line."""

import zipfile

import pytest
import torch

from gumbel_sinkhorn import checkpoint, pretrained
from gumbel_sinkhorn.cli import main
from gumbel_sinkhorn.configs.jigsaw import PRESETS
from gumbel_sinkhorn.tasks.jigsaw import JigsawTask
from gumbel_sinkhorn.train import fit


def flip_a_bit_in_tensor_data(path, bit=3):
    """Flip one bit in the middle of the largest tensor record of a torch zip file."""
    with zipfile.ZipFile(path) as archive:
        records = [i for i in archive.infolist() if "/data/" in i.filename]
        record = max(records, key=lambda i: i.file_size)
        assert record.compress_type == zipfile.ZIP_STORED
    raw = bytearray(path.read_bytes())
    header = record.header_offset  # the local header: 30 bytes, then the name and extra field
    name_length = int.from_bytes(raw[header + 26 : header + 28], "little")
    extra_length = int.from_bytes(raw[header + 28 : header + 30], "little")
    start = header + 30 + name_length + extra_length
    raw[start + record.file_size // 2] ^= 1 << bit
    path.write_bytes(bytes(raw))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    task = JigsawTask.create(
        dataset="digits",
        grid=2,
        train_size=64,
        test_size=16,
        model=PRESETS["ours"].replace(n_context=1, d_model=16),
    )
    fit(task, folder, epochs=1, lr=1e-3, progress=False)
    pretrained.save_weights(folder / "weights.pt", task, pretrained.load_model(folder)[1])
    return folder


@pytest.mark.parametrize("name", ["checkpoint.pt", "weights.pt"])
def test_one_flipped_bit_in_the_tensor_data_is_refused(run, name, tmp_path, capsys):
    path = tmp_path / name
    path.write_bytes((run / name).read_bytes())
    pretrained.load_model(path)  # intact: loads
    flip_a_bit_in_tensor_data(path)
    torch.load(path, weights_only=True)  # torch itself does not notice
    with pytest.raises(checkpoint.CorruptCheckpointError, match="does not match the checksum"):
        pretrained.load_model(path)
    assert main(["jigsaw", "evaluate", "--pretrained", str(path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "is corrupt" in error[0], error


def test_resume_refuses_a_corrupt_checkpoint(run, tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes())
    flip_a_bit_in_tensor_data(tmp_path / "checkpoint.pt", bit=0)
    args = ["jigsaw", "train", "--run-dir", str(tmp_path), "--resume", "--epochs", "2", "--quiet"]
    assert main(args) == 2
    assert "is corrupt" in capsys.readouterr().err


def test_every_shipped_file_carries_a_checksum():
    for name in pretrained.available():
        raw = torch.load(pretrained.resolve(name), weights_only=True)
        assert raw["version"] == 2 and raw["checksum"].startswith("sha256:"), name


def test_a_removed_checksum_is_refused_and_files_from_before_checksums_load(tmp_path):
    path = checkpoint.save(tmp_path / "c.pt", "checkpoint", {"epoch": 1, "w": torch.ones(3)})
    raw = torch.load(path, weights_only=True)
    del raw["checksum"]
    torch.save(raw, path)
    with pytest.raises(checkpoint.CorruptCheckpointError, match="none found"):
        checkpoint.load(path, "checkpoint")
    torch.save({**raw, "version": 1}, path)  # as version 1 wrote it: loads, unchecked
    assert checkpoint.load(path, "checkpoint")["epoch"] == 1
    checkpoint.save(path, "checkpoint", checkpoint.load(path, "checkpoint"))  # saved again: checked
    assert torch.load(path, weights_only=True)["checksum"].startswith("sha256:")
