"""Jigsaw training throughput (images/s): our pipeline vs the tutorial's, same model size.

    GUMBEL_SINKHORN_DATA=../shared/data .venv/bin/python benchmarks/jigsaw_throughput.py

The tutorial's pipeline (REFERENCES §2), rewritten here from its description as the reference:
each image converted and normalised on its own (PIL image -> tensor -> Normalize, as
torchvision's MNIST dataset and transforms do), puzzles made one image at a time
(``bench_data.loop_puzzles``), a ``SinkhornConvNet`` whose
forward pass loops over the pieces in Python (g1 then g2 for piece 0, then piece 1, ...), a
log-domain Sinkhorn that renormalises the whole matrix every half-step, one Gumbel sample,
``mse_loss(..., reduction="sum")``, Adam. Ours: ``JigsawTask`` batches (whole-batch cut and
scramble), ``SinkhornPieceNet`` in the tutorial's configuration (the same 7,168 parameters at
2x2: pieces folded into the batch, one g1 call), ``gumbel_sinkhorn.ops``, the task's loss. Both
run in this process on the same images, alternating, best of ``--repeat`` timings (1 thread
unless ``--threads``). "ours bf16": the same with ``--precision bfloat16`` (fit's autocast).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from torch import nn

from _measure import interleaved_best
from bench_data import loop_puzzles
from gumbel_sinkhorn.configs.jigsaw import PRESETS, SAMPLING
from gumbel_sinkhorn.data import fit_to_grid
from gumbel_sinkhorn.tasks.jigsaw import JigsawTask
from gumbel_sinkhorn.train import adam, autocast


class LoopSinkhornConvNet(nn.Module):
    """The tutorial's network: the same g1 and g2, applied piece by piece in a Python loop."""

    def __init__(self, n_pieces: int, piece_size: int, hidden: int = 32, kernel: int = 5):
        super().__init__()
        self.g1 = nn.Sequential(
            nn.Conv2d(1, hidden, kernel, padding=kernel // 2),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.BatchNorm2d(hidden),
        )
        self.g2 = nn.Linear((piece_size // 2) ** 2 * hidden, n_pieces, bias=False)

    def forward(self, pieces, tau=0.1, n_iter=20):
        rows = [self.g2(self.g1(pieces[:, i]).flatten(1)) for i in range(pieces.shape[1])]
        log_alpha = torch.stack(rows, dim=1)
        u = torch.rand_like(log_alpha)
        noisy = (log_alpha - torch.log(-torch.log(u + 1e-20) + 1e-20)) / tau
        for _ in range(n_iter):
            noisy = noisy - torch.logsumexp(noisy, dim=-1, keepdim=True)
            noisy = noisy - torch.logsumexp(noisy, dim=-2, keepdim=True)
        P = noisy.exp()
        ordered = torch.einsum("bij,bichw->bjchw", P, pieces)
        return ordered, P


def per_image_transform(raw: torch.Tensor, mean=0.1307, std=0.3081) -> torch.Tensor:
    """torchvision-style: uint8 array -> PIL image -> float tensor in [0, 1] -> Normalize."""
    out = []
    for image in raw:
        pil = Image.fromarray(image[0].numpy(), mode="L")
        x = torch.from_numpy(np.asarray(pil, dtype=np.uint8).copy()).float().div(255)
        out.append(((x - mean) / std).unsqueeze(0))
    return torch.stack(out)


def tutorial_steps(raw, grid, steps, batch):
    n, side = grid * grid, raw.shape[-1] // grid
    model = LoopSinkhornConvNet(n, side)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-8)
    generator = torch.Generator().manual_seed(0)

    def run():
        for step in range(steps):
            chunk = per_image_transform(raw[step * batch : (step + 1) * batch])
            scrambled, perm = loop_puzzles(chunk, grid, generator)
            pieces = torch.stack([p[q.argsort()] for p, q in zip(scrambled, perm, strict=True)])
            ordered, _ = model(scrambled)
            loss = nn.functional.mse_loss(ordered, pieces, reduction="sum")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return run, sum(p.numel() for p in model.parameters())


def our_steps(task, steps, precision="float32"):
    cpu = torch.device("cpu")
    model = task.build_model().train()
    optimizer = adam(model.parameters(), 1e-4, cpu)  # the one fit uses
    generator = torch.Generator().manual_seed(0)

    def run():
        batches = iter(task.train_batches(0, generator))
        for _ in range(steps):
            with autocast(cpu, precision):  # as in fit
                loss = task.loss(model, next(batches))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return run, sum(p.numel() for p in model.parameters())


def step_parts(task, steps: int) -> dict[str, float]:
    """Milliseconds per training step in each part of ours (best of two passes of ``steps``)."""
    model = task.build_model().train()
    optimizer = adam(model.parameters(), 1e-4, torch.device("cpu"))
    names = ("batching", "forward", "backward", "adam")
    best = dict.fromkeys(names, float("inf"))
    for _ in range(2):
        batches, spent = iter(task.train_batches(0, torch.Generator().manual_seed(0))), [0.0] * 4
        for _ in range(steps):
            t0 = time.perf_counter()
            batch = next(batches)
            t1 = time.perf_counter()
            loss = task.loss(model, batch)
            t2 = time.perf_counter()
            optimizer.zero_grad()
            loss.backward()
            t3 = time.perf_counter()
            optimizer.step()
            t4 = time.perf_counter()
            steps_dt = (t1 - t0, t2 - t1, t3 - t2, t4 - t3)
            spent = [total + dt for total, dt in zip(spent, steps_dt, strict=True)]
        for name, seconds in zip(names, spent, strict=True):
            best[name] = min(best[name], 1e3 * seconds / steps)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[2, 3, 4, 6])
    parser.add_argument("--steps", type=int, default=20, help="training steps per timing")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both pipelines")
    parser.add_argument(
        "--parts", action="store_true", help="also time each part of our step (ms per step)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_images = args.steps * args.batch
    print(
        f"training throughput, images/s, batch {args.batch}, {args.steps} steps, "
        f"{args.threads} thread(s)"
    )
    print(
        f"{'grid':>5} {'params':>8} {'tutorial':>10} {'ours':>10} {'speed-up':>9}"
        f" {'ours bf16':>10} {'speed-up':>9} {'ours+context':>13}"
    )
    for grid in args.grids:
        config = dict(grid=grid, batch_size=args.batch, train_size=n_images, test_size=1)
        tutorial = dict(model=PRESETS["tutorial"], sampling=SAMPLING["tutorial"])
        task = JigsawTask.create(**tutorial, **config)
        raw = fit_to_grid(task.images.dataset("train").images, grid)  # the same padded images
        theirs, n_theirs = tutorial_steps(raw, grid, args.steps, args.batch)
        ours, n_ours = our_steps(task, args.steps)
        assert n_theirs == n_ours, (n_theirs, n_ours)
        contenders = {
            "theirs": theirs,
            "ours": ours,
            "bf16": our_steps(task, args.steps, "bfloat16")[0],
            "context": our_steps(JigsawTask.create(**config), args.steps)[0],
        }
        best = interleaved_best(contenders, args.repeat)
        rate = {name: n_images / seconds for name, seconds in best.items()}
        print(
            f"{grid}x{grid:<3} {n_ours:>8,} {rate['theirs']:>10.0f} {rate['ours']:>10.0f}"
            f" {rate['ours'] / rate['theirs']:>8.1f}x {rate['bf16']:>10.0f}"
            f" {rate['bf16'] / rate['theirs']:>8.1f}x {rate['context']:>13.0f}",
            flush=True,
        )
        if args.parts:
            parts = step_parts(task, args.steps)
            print("      ours, ms per step: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))


if __name__ == "__main__":
    main()
