import pytest
import torch

from gumbel_sinkhorn.data import (
    DatasetNotFoundError,
    ImageDataset,
    folder_split,
    load_dataset,
    load_digits,
    make_puzzles,
    normalize,
    save_image,
)
from gumbel_sinkhorn.data.mnist import STATS


def test_embedded_digits():
    train, test = load_digits("train"), load_digits("test")
    assert train[0].shape == (1437, 8, 8) and test[0].shape == (360, 8, 8)
    images = torch.cat([train[0], test[0]])
    labels = torch.cat([train[1], test[1]])
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert torch.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    levels = torch.tensor([round(k * 255 / 16) for k in range(17)], dtype=torch.uint8)
    assert torch.isin(images, levels).all()  # the 17 grey levels of the UCI counts
    assert images.flatten(1).amax(1).min() > 0  # no blank image
    with pytest.raises(ValueError, match="split must be one of"):
        load_digits("val")


def test_digits_dataset_and_normalisation():
    data = load_dataset("digits")
    assert isinstance(data, ImageDataset) and len(data) == 1437 and data.channels == 1
    x = data.normalize(data.images)
    assert x.dtype == torch.float32 and x.shape == (1437, 1, 8, 8)
    assert x.mean().item() == pytest.approx(0, abs=1e-3)
    assert x.std().item() == pytest.approx(1, abs=1e-3)
    assert data.background[0] == pytest.approx(x.min().item())
    assert torch.allclose(data.denormalize(x) * 255, data.images.float(), atol=1e-3)
    test = load_dataset("digits", "test", size=24, channels=3)
    assert test.images.shape == (360, 3, 24, 24) and len(test.mean) == 3
    assert torch.equal(test.images[:, 0], test.images[:, 2])
    assert test.mean == data.mean * 3  # the training set's statistics for every split


def test_mnist_through_load_dataset(data_root):
    data = load_dataset("mnist", "test", root=data_root, download=False)
    assert data.images.shape == (10_000, 1, 28, 28) and data.labels.shape == (10_000,)
    assert (data.mean, data.std) == ((STATS["mnist"][0],), (STATS["mnist"][1],))
    assert data.normalize(data.images[:1]).min().item() == pytest.approx(-0.4242, abs=1e-4)
    small = load_dataset("fashion-mnist", "test", root=data_root, size=14)
    assert small.images.shape == (10_000, 1, 14, 14) and small.name == "fashion-mnist"


def test_unavailable_mnist_is_a_dataset_not_found_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="GUMBEL_SINKHORN_DATA"):
        load_dataset("mnist", root=tmp_path)


def make_folder(folder, n, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    for i in range(n):
        size = (3, 20 + i % 3, 24)
        save_image(
            torch.randint(0, 256, size, dtype=torch.uint8, generator=gen), folder / f"{i:03d}.png"
        )


def test_folder_dataset_held_out_split(tmp_path):
    make_folder(tmp_path, 25)
    train = load_dataset(tmp_path, "train")
    test = load_dataset(tmp_path, "test")
    everything = load_dataset(tmp_path, "all")
    assert (len(train), len(test), len(everything)) == (23, 2, 25)
    assert train.images.shape[1:] == test.images.shape[1:] == (3, 20, 20)
    assert train.labels is None and train.mean == (0.5,) * 3 and train.background == (-1.0,) * 3
    names = {p.name for p in folder_split(tmp_path, "test")}
    assert names.isdisjoint(p.name for p in folder_split(tmp_path, "train"))
    rows = {tuple(x.flatten().tolist()) for x in torch.cat([train.images, test.images])}
    assert rows == {tuple(x.flatten().tolist()) for x in everything.images}
    puzzles = make_puzzles(train.normalize(train.images), 4)
    assert puzzles.pieces.shape == (23, 16, 3, 5, 5)


def test_folder_split_edge_cases(tmp_path):
    make_folder(tmp_path / "one", 1)
    assert len(folder_split(tmp_path / "one", "train")) == 1
    assert folder_split(tmp_path / "one", "test") == []
    with pytest.raises(ValueError, match="holds 1 image file, none left for the test split"):
        load_dataset(tmp_path / "one", "test")  # was "no image files in .../one"
    assert len(load_dataset(tmp_path / "one", "train")) == 1
    make_folder(tmp_path / "split" / "train", 4)
    make_folder(tmp_path / "split" / "test", 2, seed=1)
    assert [p.parent.name for p in folder_split(tmp_path / "split", "test")] == ["test"] * 2
    assert len(load_dataset(tmp_path / "split", "train", size=8)) == 4
    assert len(folder_split(tmp_path / "split", "all")) == 6
    make_folder(tmp_path / "empty" / "train", 2)
    (tmp_path / "empty" / "test").mkdir()
    with pytest.raises(ValueError, match=r"empty.test holds no image files"):
        load_dataset(tmp_path / "empty", "test")
    make_folder(tmp_path / "half" / "train", 2)
    with pytest.raises(ValueError, match="no test/"):
        folder_split(tmp_path / "half", "test")
    with pytest.raises(ValueError, match="split must be one of"):
        folder_split(tmp_path / "one", "validation")


def test_bad_names_and_options(tmp_path):
    with pytest.raises(ValueError, match="one of .* or a folder of images, got 'cifar10'"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="channels must be 1, 3 or None"):
        load_dataset("digits", channels=2)
    with pytest.raises(ValueError, match="one value per channel"):
        normalize(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), (0.5,), (0.5,))


@pytest.mark.parametrize("offset", [100, 30_000, 45_100])
def test_a_damaged_embedded_digits_file_is_one_clear_error(offset, tmp_path, monkeypatch):
    from gumbel_sinkhorn.data import CorruptFileError, digits

    raw = bytearray(digits.DIGITS_FILE.read_bytes())
    raw[offset] ^= 4  # one bit, in the images' data, their compressed stream or the labels'
    damaged = tmp_path / "digits.npz"
    damaged.write_bytes(bytes(raw))
    monkeypatch.setattr(digits, "DIGITS_FILE", damaged)
    with pytest.raises(CorruptFileError, match="reinstall"):
        digits.load_digits("test")
