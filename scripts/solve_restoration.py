"""How often does ``jigsaw solve`` give back a scrambled MNIST test digit pixel for pixel?

For each shipped model named, over the MNIST test digits (28×28 uint8, as a user's PNG holds
them): scramble each digit's pieces, solve, and compare the restored image with the digit. Two
ways to prepare the digit for the model: ``fit_image`` (the model's own training fit, e.g. padding
to 30×30, and ``unfit_image`` back to 28×28: what ``solve`` does) and the resize that ``solve``
did before (28 -> 27 or 30, bilinear): its output is the resized image, never 28×28, so its pixel
rate is 0; its "exact" column is the share of puzzles whose resized pieces were put back exactly.
Beside them, ``prop_exact`` as ``evaluate`` reports it (the model's own padded test puzzles).

    GUMBEL_SINKHORN_DATA=/path python scripts/solve_restoration.py mnist-3x3 mnist-5x5 mnist-6x6
"""

import argparse

import torch

from gumbel_sinkhorn import pretrained
from gumbel_sinkhorn.data import (
    assemble_pieces,
    cut_pieces,
    fit_image,
    fit_to_grid,
    load_mnist,
    resize_images,
    scramble,
    unfit_image,
    unscramble,
)


def restore(task, model, fitted, seed):
    """Scramble ``fitted`` (uint8 ``(B, C, H, W)``), solve, and return the solved images."""
    pieces = cut_pieces(fitted, task.grid)
    scrambled, _ = scramble(pieces, generator=torch.Generator().manual_seed(seed))
    perm = torch.cat([model.solve(task.normalize(c)) for c in scrambled.split(1000)])
    solved = unscramble(scrambled, perm)
    return assemble_pieces(solved), (solved == pieces).flatten(1).all(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+")
    parser.add_argument("--n", type=int, default=10_000, help="test digits used")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    digits = load_mnist("test")[0][: args.n].unsqueeze(1)
    print(
        "| model | evaluate prop_exact | solve, resized (before): exact puzzles | pixel-exact "
        "| solve, fit_image (now): exact puzzles | pixel-exact 28×28 |"
    )
    print("|---|---|---|---|---|---|")
    for name in args.names:
        task, model, stored = pretrained.load_model(name)
        shape = tuple(task.image_shape[1:])
        with torch.no_grad():
            old = fit_to_grid(digits, task.grid, mode="resize")
            if tuple(old.shape[-2:]) != shape:
                old = resize_images(old, shape)
            old_images, old_exact = restore(task, model, old, args.seed)
            old_rate = 0.0  # the resized output is 27 or 30 pixels wide: never the digit
            if old_images.shape == digits.shape:
                old_rate = float((old_images == digits).flatten(1).all(1).float().mean())
            fitted, fit = fit_image(digits, task.grid, shape, mode=task.fit)
            new_images, new_exact = restore(task, model, fitted, args.seed)
            new_pixels = (unfit_image(new_images, fit) == digits).flatten(1).all(1)
        print(
            f"| {name} | {stored['prop_exact']:.4f} | {old_exact.float().mean():.4f} | "
            f"{old_rate:.4f} | {new_exact.float().mean():.4f} | "
            f"{new_pixels.float().mean():.4f} |"
        )


if __name__ == "__main__":
    main()
