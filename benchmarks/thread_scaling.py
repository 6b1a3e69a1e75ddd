"""Where the 1 → 2 thread speed-up of ours is lost: the parts of a forward + backward timed apart.

    .venv/bin/python benchmarks/thread_scaling.py [--repeat 15] [--sizes 8x400 64x100]

For each (batch, N) and n_iter, each part is timed at ``--threads`` T and at one thread,
interleaved call by call (the fastest of ``--repeat`` each):

- "native forward": the C forward alone on a prepared problem (``ops._native.solve``), recording
  for the reverse as training does; "its iterations" is that minus the same call with one
  iteration (the kernel's construction, the passes over the inputs and outputs, the record);
- "harness only": what ``sinkhorn.py`` times around the operator (autograd's vector-Jacobian
  product with the weights) with the identity in place of the operator: passes over
  (batch, N, N) arrays and nothing else;
- "ours fwd+bwd": the whole call as ``sinkhorn.py`` times it (``backward="unrolled"``).

Parts made of passes over arrays larger than a core's cache are bound by the machine's memory
bandwidth, which both threads share; the iterations work on one item's kernel in a core's cache.
"""

from __future__ import annotations

from functools import partial

import torch

import gumbel_sinkhorn as gs
from _measure import interleaved_best, main
from gumbel_sinkhorn.ops import _native
from gumbel_sinkhorn.ops.sinkhorn import _problem, _Settings
from sinkhorn import at_threads, forward_backward

SIZES = [(8, 400), (64, 100)]
N_ITERS = [20, 100]


def parts(scores: torch.Tensor, weights: torch.Tensor, n_iter: int) -> dict:
    """Zero-argument callables by part name (see the module's docstring)."""
    problem = _problem(scores, None, _Settings(n_iter, 1.0, None, "unrolled", False))
    leaf = scores.clone().requires_grad_()

    def native(iterations):
        return lambda: _native.solve(problem, iterations, record=True, log=False, plan=True)

    out = {
        "harness only": partial(forward_backward, lambda x: x * 1.0, leaf, weights),
        "ours fwd+bwd": partial(
            forward_backward, partial(gs.sinkhorn, n_iter=n_iter), leaf, weights
        ),
    }
    if _native.usable(problem.x):  # without a compiler: the torch operators, no native parts
        out.update({"native forward": native(n_iter), "native forward, 1 iteration": native(1)})
    return out


def rows(sizes, n_iters, repeat: int) -> list[dict]:
    threads = torch.get_num_threads()
    out = []
    for batch, n in sizes:
        gen = torch.Generator().manual_seed(batch * n)
        scores = torch.randn(batch, n, n, generator=gen)
        weights = torch.randn(batch, n, n, generator=gen)
        for n_iter in n_iters:
            calls = {}
            for name, call in parts(scores, weights, n_iter).items():
                calls[(name, threads)] = call
                calls[(name, 1)] = at_threads(1, call)
            best = interleaved_best(calls, repeat)
            names = [name for name, _ in calls][::2]
            times = {name: (best[(name, 1)], best[(name, threads)]) for name in names}
            if "native forward" in times:
                one, its = times["native forward"], times["native forward, 1 iteration"]
                times["its iterations"] = (one[0] - its[0], one[1] - its[1])
            for name, (t1, tt) in times.items():
                out.append(dict(size=(batch, n), n_iter=n_iter, part=name, t1=t1, tt=tt))
    return out


def table(results: list[dict], threads: int) -> str:
    lines = [
        f"| (batch, N) | n_iter | part | 1 thread ms | {threads} threads ms | 1 → {threads} |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        ratio = r["t1"] / r["tt"] if r["tt"] > 0 else float("nan")
        lines.append(
            f"| {r['size']} | {r['n_iter']} | {r['part']} | {r['t1'] * 1e3:.2f} | "
            f"{r['tt'] * 1e3:.2f} | {ratio:.2f} |"
        )
    return "\n".join(lines)


def run(args) -> None:
    sizes = [(2, 16)] if args.quick else [tuple(map(int, s.split("x"))) for s in args.sizes]
    print(table(rows(sizes, [2] if args.quick else N_ITERS, args.repeat), torch.get_num_threads()))


def options(parser) -> None:
    parser.add_argument("--sizes", nargs="+", default=[f"{b}x{n}" for b, n in SIZES])


if __name__ == "__main__":
    main(__doc__.split("\n")[0], [run], options=options)
