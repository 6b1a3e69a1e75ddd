import functools
import gzip
import hashlib
import http.server
import io
import threading
import tracemalloc
from pathlib import Path

import pytest
import torch

from gumbel_sinkhorn.data import (
    CorruptFileError,
    DatasetNotFoundError,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)
from gumbel_sinkhorn.data import mnist as mnist_module

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def idx_bytes(header: bytes, body: bytes) -> bytes:
    return gzip.compress(header + body)


def test_real_mnist_and_fashion_mnist(data_root):
    images, labels = load_mnist("test", root=data_root, download=False)
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10_000,) and labels.dtype == torch.int64
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert torch.bincount(labels).tolist() == counts
    assert images.max() == 255 and images[:, :2].float().mean() < 1  # blank top rows
    f_images, f_labels = load_fashion_mnist("test", root=data_root, download=False)
    assert f_images.shape == (10_000, 28, 28)
    assert torch.bincount(f_labels).tolist() == [1000] * 10
    assert not torch.equal(f_images[:100], images[:100])


def pixel_stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of the pixels in [0, 1], exactly, from a histogram."""
    counts = torch.bincount(images.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    mean = (counts * values).sum() / counts.sum()
    var = (counts * (values - mean) ** 2).sum() / (counts.sum() - 1)
    return mean.item(), var.sqrt().item()


def test_real_training_split_and_its_statistics(data_root):
    images, labels = load_mnist("train", root=data_root, download=False)
    assert images.shape == (60_000, 28, 28) and labels.shape == (60_000,)
    assert pixel_stats(images) == pytest.approx(mnist_module.STATS["mnist"], abs=1e-4)
    images, _ = load_fashion_mnist("train", root=data_root, download=False)
    assert pixel_stats(images) == pytest.approx(mnist_module.STATS["fashion-mnist"], abs=1e-4)


def test_env_var_is_the_default_root_and_torchvision_layout_works(data_root, tmp_path, monkeypatch):
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in TEST_FILES:
        (raw / name).symlink_to(data_root / "mnist" / name)
    expected = load_mnist("test", root=data_root, download=False)
    monkeypatch.setenv("GUMBEL_SINKHORN_DATA", str(tmp_path / "tv"))
    got = load_mnist("test", download=False)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    with pytest.raises(DatasetNotFoundError, match="FashionMNIST/raw"):
        load_fashion_mnist("test", download=False)


def test_returned_tensors_are_private_copies(data_root):
    images, _ = load_mnist("test", root=data_root, download=False)
    images.zero_()
    again, _ = load_mnist("test", root=data_root, download=False)
    assert again.sum() > 0


def test_decode_idx_and_all_its_checks(tmp_path):
    good = tmp_path / "good.gz"
    good.write_bytes(idx_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]), bytes(range(6))))
    assert read_idx(good).tolist() == [[0, 1, 2], [3, 4, 5]]
    plain = tmp_path / "plain-idx"  # uncompressed, int16 big-endian
    plain.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2]) + (-2).to_bytes(2, "big", signed=True) * 2)
    assert read_idx(plain).tolist() == [-2, -2] and read_idx(plain).dtype == torch.int16

    cases = {
        "truncated.gz": (good.read_bytes()[:-10], "broken gzip stream"),
        "magic.gz": (idx_bytes(bytes([0, 1, 8, 1, 0, 0, 0, 1]), b"x"), "not an IDX file"),
        "type.gz": (idx_bytes(bytes([0, 0, 7, 1, 0, 0, 0, 1]), b"x"), "not an IDX file"),
        "empty.gz": (gzip.compress(b""), "magic number missing"),
        "short.gz": (idx_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]), bytes(5)), "truncated"),
        "long.gz": (idx_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2]), bytes(3)), "too long"),
        "header.gz": (gzip.compress(bytes([0, 0, 8, 3, 0, 0])), "truncated IDX header"),
        "huge.gz": (idx_bytes(bytes([0, 0, 0x0E, 3]) + b"\xff" * 12, bytes(8)), "truncated"),
        "garbage.gz": (b"\x1f\x8b" + bytes(20), "broken gzip stream"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CorruptFileError, match=message) as err:
            read_idx(tmp_path / name)
        assert name in str(err.value)
    # a 64 KB file that would expand to 64 MB is read no further than its header's 6 bytes
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(2**26)))
    tracemalloc.start()
    with pytest.raises(CorruptFileError, match="too long"):
        read_idx(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**22
    with pytest.raises(CorruptFileError, match="does not match the published checksum"):
        read_idx(good, md5="0" * 32)
    assert read_idx(good, md5=hashlib.md5(good.read_bytes()).hexdigest()).shape == (2, 3)


@pytest.mark.parametrize("damage", ["truncated", "wrong-checksum", "wrong-magic"])
def test_corrupt_files_in_the_root_are_rejected_and_not_cached(
    damage, data_root, tmp_path, private_cache
):
    root = tmp_path / "root"
    (root / "mnist").mkdir(parents=True)
    images = root / "mnist" / TEST_FILES[0]
    labels = root / "mnist" / TEST_FILES[1]
    labels.symlink_to(data_root / "mnist" / TEST_FILES[1])
    original = (data_root / "mnist" / TEST_FILES[0]).read_bytes()
    header = bytes([0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28])
    bad = {
        "truncated": original[: len(original) // 2],
        "wrong-checksum": idx_bytes(header, bytes(10 * 28 * 28)),  # a valid IDX file, not MNIST's
        "wrong-magic": idx_bytes(b"\0\0\x08\x04" + header[4:], bytes(10 * 28 * 28)),
    }[damage]
    images.write_bytes(bad)
    decoded_before = dict(mnist_module._decoded)
    with pytest.raises(CorruptFileError, match="published checksum") as err:
        load_mnist("test", root=root)
    assert str(images) in str(err.value) and "delete it" in str(err.value)
    assert files_under(private_cache) == []  # no download, nothing written
    assert mnist_module._decoded.keys() == decoded_before.keys()  # nothing kept in memory
    images.write_bytes(original)  # once repaired, the same path loads
    assert load_mnist("test", root=root)[0].shape == (10_000, 28, 28)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def file_server():
    """A local HTTP server; yields a function that serves a folder and returns its URL."""
    servers = []

    def serve(folder: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_download_from_a_mirror_into_the_cache(
    data_root, tmp_path, file_server, monkeypatch, private_cache
):
    bad = tmp_path / "bad-mirror"
    bad.mkdir()
    for name in TEST_FILES:  # the first mirror serves damaged files: skipped
        (bad / name).write_bytes((data_root / "mnist" / name).read_bytes()[:-100])
    mirrors = (file_server(bad), file_server(data_root / "mnist"))
    monkeypatch.setattr(mnist_module, "MIRRORS", {"mnist": mirrors})
    images, labels = load_mnist("test", root=tmp_path / "empty")
    expected = load_mnist("test", root=data_root, download=False)
    assert torch.equal(images, expected[0]) and torch.equal(labels, expected[1])
    assert files_under(private_cache) == [private_cache / "mnist" / n for n in sorted(TEST_FILES)]
    # The cache is used from now on, with no mirror at all.
    monkeypatch.setattr(mnist_module, "MIRRORS", {"mnist": ()})
    assert torch.equal(load_mnist("test", root=tmp_path / "empty")[1], expected[1])


def test_corrupt_downloads_are_never_cached(tmp_path, file_server, monkeypatch, private_cache):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in TEST_FILES:
        (mirror / name).write_bytes(gzip.compress(b"not mnist"))
    monkeypatch.setattr(mnist_module, "MIRRORS", {"mnist": (file_server(mirror),)})
    with pytest.raises(DatasetNotFoundError, match="published checksum") as err:
        load_mnist("test", root=tmp_path / "empty")
    assert "GUMBEL_SINKHORN_DATA" in str(err.value) and "--data-root" in str(err.value)
    assert files_under(private_cache) == []  # not even a partial file


def test_truncated_transfer_is_rejected(monkeypatch, tmp_path, private_cache):
    class Response(io.BytesIO):
        headers = {"Content-Length": "1000"}

    monkeypatch.setattr(mnist_module, "MIRRORS", {"mnist": ("http://mirror.invalid/",)})
    monkeypatch.setattr(
        "gumbel_sinkhorn.data._files.urlopen", lambda url, timeout: Response(b"x" * 10)
    )
    with pytest.raises(DatasetNotFoundError, match="truncated download: 10 of 1000 bytes"):
        load_mnist("test", root=tmp_path / "empty")
    assert files_under(private_cache) == []


def test_offline_error_says_how_to_point_at_local_files(tmp_path, monkeypatch, private_cache):
    monkeypatch.setattr(mnist_module, "MIRRORS", {"fashion-mnist": ("http://127.0.0.1:9/",)})
    with pytest.raises(DatasetNotFoundError) as err:
        load_fashion_mnist("train", root=tmp_path / "nowhere")
    message = str(err.value)
    for part in (
        "train-images-idx3-ubyte.gz",
        "nowhere/fashion-mnist",
        "http://127.0.0.1:9/",
        "GUMBEL_SINKHORN_DATA=DIR",
        "--data-root DIR",
        "root=DIR",
    ):
        assert part in message
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        load_mnist("test", download=False)
    assert files_under(private_cache) == []


def test_bad_names_and_splits():
    with pytest.raises(ValueError, match="split must be one of"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="dataset must be one of"):
        mnist_module.load_idx_dataset("kmnist", "train")
