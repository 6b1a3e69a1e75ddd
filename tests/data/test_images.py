import pytest
import torch
from PIL import Image

from gumbel_sinkhorn.data import (
    image_files,
    load_image,
    load_image_folder,
    resize_images,
    save_image,
)


def random_image(c, h, w, seed=0):
    return torch.randint(
        0, 256, (c, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize("c", [1, 3])
def test_png_round_trip_is_exact(tmp_path, c):
    image = random_image(c, 7, 5)
    save_image(image, tmp_path / "x.png")
    assert torch.equal(load_image(tmp_path / "x.png"), image)
    assert load_image(tmp_path / "x.png", channels=4 - c).shape == (4 - c, 7, 5)


def test_size_takes_the_central_square_and_keeps_orientation(tmp_path):
    image = torch.zeros(1, 20, 60, dtype=torch.uint8)
    image[..., 20:40] = 255  # the central 20×20 square is white, the sides black
    image[..., :10, 20:40] = 128  # its top half grey
    save_image(image, tmp_path / "wide.png")
    loaded = load_image(tmp_path / "wide.png", size=10)
    assert loaded.shape == (1, 10, 10)
    inner = loaded[0, :, 2:8]  # the filter may blend a little of the sides into the edge columns
    assert inner[:4].float().sub(128).abs().max() <= 2
    assert inner[6:].min() >= 250 and loaded[0, :, :2].float().mean() > 100


def test_modes_are_converted(tmp_path):
    Image.new("RGBA", (6, 6), (10, 20, 30, 128)).save(tmp_path / "rgba.png")
    Image.new("P", (6, 6), 3).save(tmp_path / "palette.png")
    Image.new("L", (6, 6), 77).save(tmp_path / "grey.jpg", quality=95)
    assert load_image(tmp_path / "rgba.png")[:, 0, 0].tolist() == [10, 20, 30]
    assert load_image(tmp_path / "palette.png").shape == (3, 6, 6)
    grey = load_image(tmp_path / "grey.jpg")
    assert grey.shape == (1, 6, 6) and (grey.int() - 77).abs().max() <= 1


def test_folder_of_mixed_images(tmp_path):
    save_image(random_image(1, 30, 40), tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    save_image(random_image(3, 50, 50), tmp_path / "sub" / "b.png")
    Image.new("RGB", (64, 33), (200, 100, 0)).save(tmp_path / "c.jpg")
    (tmp_path / ".hidden.txt").write_text("skipped")
    assert [p.name for p in image_files(tmp_path)] == ["a.png", "c.jpg", "b.png"]
    images = load_image_folder(tmp_path)
    assert images.shape == (3, 3, 30, 30) and images.dtype == torch.uint8  # colour, smallest side
    assert torch.equal(images[0, 0], images[0, 1])  # the grey image, repeated
    assert (images[1].float().mean((1, 2)) - torch.tensor([200.0, 100, 0])).abs().max() < 3
    assert load_image_folder(tmp_path, grid=4).shape[-1] == 28
    assert load_image_folder(tmp_path, size=12, grid=5, channels=1).shape == (3, 1, 10, 10)
    subset = load_image_folder(tmp_path, files=image_files(tmp_path)[:1])
    assert subset.shape == (1, 3, 30, 30)  # the defaults describe the whole folder


def test_non_images_and_broken_images_are_named(tmp_path):
    save_image(random_image(1, 8, 8), tmp_path / "good.png")
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(ValueError, match=r"notes\.txt: not an image"):
        load_image_folder(tmp_path)
    (tmp_path / "notes.txt").unlink()
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "broken.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"broken\.png: not an image"):
        load_image_folder(tmp_path, size=8)
    with pytest.raises(ValueError, match=r"broken\.png"):
        load_image(tmp_path / "broken.png")


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"image file .*missing\.png does not exist"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="no image files"):
        load_image_folder(tmp_path)
    save_image(random_image(1, 8, 8), tmp_path / "a.png")
    with pytest.raises(ValueError, match="cannot be cut into a 9×9 grid"):
        load_image_folder(tmp_path, grid=9)
    with pytest.raises(ValueError, match="channels must be 1, 3 or None"):
        load_image(tmp_path / "a.png", channels=2)
    with pytest.raises(ValueError, match="C = 1 or 3"):
        save_image(torch.zeros(2, 4, 4), tmp_path / "b.png")


def test_save_float_images_clamps(tmp_path):
    save_image(torch.tensor([[-1.0, 0.5, 2.0]]), tmp_path / "f.png")
    assert load_image(tmp_path / "f.png").flatten().tolist() == [0, 128, 255]


def test_resize_images_keeps_dtype_and_batch_axes():
    images = torch.full((2, 3, 1, 8, 8), 100, dtype=torch.uint8)
    out = resize_images(images, (4, 6))
    assert out.shape == (2, 3, 1, 4, 6) and out.dtype == torch.uint8 and out.eq(100).all()
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    assert resize_images(x, 8).dtype == torch.float64


def test_save_image_is_atomic_and_needs_a_known_suffix(tmp_path, monkeypatch):
    path = tmp_path / "kept.png"
    save_image(torch.zeros(1, 4, 4, dtype=torch.uint8), path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="image format"):
        save_image(torch.zeros(4, 4), tmp_path / "picture.unknown")

    def broken_save(self, file, format=None):
        file.write(b"half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="previous file is unchanged"):
        save_image(torch.ones(1, 4, 4), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["kept.png"]


def png_header_only(path, width, height):
    """A 60-byte PNG whose header claims width x height grey pixels (a decompression bomb's)."""
    import struct
    import zlib

    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("side", [30_000, 10_000])  # above twice Pillow's limit; between
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, side):
    from gumbel_sinkhorn.data import load_image_folder

    bomb = png_header_only(tmp_path / "bomb.png", side, side)
    with pytest.raises(ValueError, match="too large to decode safely.*MAX_IMAGE_PIXELS"):
        load_image(bomb)
    with pytest.raises(ValueError, match="bomb.png: refused"):
        load_image_folder(tmp_path)
