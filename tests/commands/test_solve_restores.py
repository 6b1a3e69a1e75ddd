"""``jigsaw solve`` gives back the user's image: at its own size, pixel for pixel when solved."""

import os

import pytest
import torch

from gumbel_sinkhorn import pretrained
from gumbel_sinkhorn.cli import main
from gumbel_sinkhorn.data import load_image, load_mnist, save_image

DATA_ROOT = os.environ.get("GUMBEL_SINKHORN_DATA")
DIGITS = 8  # test digits per model: each is one `solve` call


@pytest.mark.skipif(not DATA_ROOT, reason="GUMBEL_SINKHORN_DATA is not set")
@pytest.mark.parametrize("name", ["mnist-3x3", "mnist-5x5", "mnist-6x6"])
def test_a_scrambled_test_digit_comes_back_pixel_for_pixel_when_solved(name, tmp_path):
    # The shipped models are equivariant (the pieces' order does not change what they predict),
    # so whether a digit comes back does not depend on the seed: exactly the digits that
    # `evaluate` counts as exact come back, at 28x28, pixel for pixel.
    task, model, _ = pretrained.load_model(name)
    task = type(task)(task.config.replace(test_size=DIGITS), data_root=DATA_ROOT)
    expected = task.solve_test_set(model)["prop_exact"].bool()
    digits = load_mnist("test", root=DATA_ROOT)[0][:DIGITS]
    for i, digit in enumerate(digits):
        image, out = tmp_path / f"{i}.png", tmp_path / f"{i}-solved.png"
        save_image(digit, image)
        assert main(["jigsaw", "solve", str(image), "--pretrained", name, "--seed", str(i)]) == 0
        solved = load_image(out)
        assert solved.shape == (1, 28, 28)
        assert torch.equal(solved[0], digit) == bool(expected[i]), i
    assert expected.float().mean() >= 0.5  # the slice holds solved digits: the test can fail


@pytest.mark.skipif(not DATA_ROOT, reason="GUMBEL_SINKHORN_DATA is not set")
def test_a_dark_on_light_digit_is_inverted_for_the_model_and_comes_back_as_drawn(tmp_path, capsys):
    # An MNIST model knows light digits on black; a user's black-on-white drawing is shown to it
    # inverted (auto), and the solution is written in the drawing's own colours.
    task, model, _ = pretrained.load_model("mnist-3x3")
    task = type(task)(task.config.replace(test_size=DIGITS), data_root=DATA_ROOT)
    expected = task.solve_test_set(model)["prop_exact"].bool()
    digits = load_mnist("test", root=DATA_ROOT)[0][:DIGITS]
    kept = 0
    for i, digit in enumerate(digits):
        image, out = tmp_path / f"{i}.png", tmp_path / f"{i}-solved.png"
        save_image(255 - digit, image)
        assert (
            main(["jigsaw", "solve", str(image), "--pretrained", "mnist-3x3", "--seed", str(i)])
            == 0
        )
        assert "inverted for the model" in capsys.readouterr().out
        assert torch.equal(load_image(out)[0], 255 - digit) == bool(expected[i]), i
        no = tmp_path / f"{i}-kept.png"
        argv = ["jigsaw", "solve", str(image), "--pretrained", "mnist-3x3", "--seed", str(i)]
        assert main([*argv, "--invert", "no", "--output", str(no)]) == 0
        kept += torch.equal(load_image(no)[0], 255 - digit)
    assert expected.float().mean() >= 0.5 and kept < expected.sum()  # inverting is what helps
