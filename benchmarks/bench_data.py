"""Data layer timings: MNIST decode, and puzzle making vectorised vs a per-image loop.

    GUMBEL_SINKHORN_DATA=../shared/data .venv/bin/python benchmarks/bench_data.py

The per-image loop is the tutorial's way of making puzzles (slice each piece, one ``randperm``
per image), rewritten here as the reference; ours cuts and scrambles the whole batch at once.
"""

from __future__ import annotations

import torch

from _measure import interleaved_best
from gumbel_sinkhorn.data import fit_to_grid, load_mnist, make_puzzles
from gumbel_sinkhorn.data import mnist as mnist_module


def loop_puzzles(images: torch.Tensor, grid: int, generator: torch.Generator):
    """One image at a time: slice its pieces, draw its permutation, shuffle."""
    side = images.shape[-1] // grid
    out, perms = [], []
    for image in images:
        pieces = [
            image[:, i * side : (i + 1) * side, j * side : (j + 1) * side]
            for i in range(grid)
            for j in range(grid)
        ]
        perm = torch.randperm(grid * grid, generator=generator)
        out.append(torch.stack([pieces[k] for k in perm]))
        perms.append(perm)
    return torch.stack(out), torch.stack(perms)


def main() -> None:
    torch.set_num_threads(1)
    mnist_module._decoded.clear()
    cold = interleaved_best(
        {"cold": lambda: (mnist_module._decoded.clear(), load_mnist("train", download=False))}, 3
    )["cold"]
    warm = interleaved_best({"warm": lambda: load_mnist("train", download=False)}, 5)["warm"]
    print(f"MNIST train (60,000 images) decode + md5: {cold:.3f} s; again in-process: {warm:.3f} s")
    images, _ = load_mnist("test", download=False)
    batch = images[:64].unsqueeze(1).float()
    print("\nPuzzles for a batch of 64 MNIST images (1 thread), per batch:")
    print(f"{'grid':>5} {'per-image loop':>15} {'make_puzzles':>13} {'speed-up':>9}")
    gen = torch.Generator().manual_seed(0)
    for grid in (2, 3, 4, 5, 6):
        x = fit_to_grid(batch, grid, mode="pad")
        best = interleaved_best(
            {
                "loop": lambda x=x, grid=grid: loop_puzzles(x, grid, gen),
                "ours": lambda x=x, grid=grid: make_puzzles(x, grid, generator=gen),
            },
            20,
        )
        ref, ours = best["loop"], best["ours"]
        print(f"{grid:>5} {ref * 1e3:>12.2f} ms {ours * 1e3:>10.2f} ms {ref / ours:>8.1f}x")


if __name__ == "__main__":
    main()
