"""What a places-CNN ranking model learned about digits it was never told: symbols and values.

    GUMBEL_SINKHORN_DATA=/data python scripts/ranking_symbols.py MODEL [--output FIGURE.png]

A model with ``--cnn places`` reads every digit as one of its latent symbols, each with a learned
value, and weighs the places (``PlaceValueCNN``); it was trained on the order of sets alone. For
every digit of MNIST's test file this prints, per true digit, the symbol it is read as most often
(with that share) and the mean and spread of its value, the place weights of the head, and whether
the values come out in the digits' order; the figure shows the whole table of true digit against
symbol and each digit's values. MODEL: shipped weights (e.g. rank-sinkhorn-places-raw-shift-60k),
a weights file or a run folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gumbel_sinkhorn.data.multidigit import compose, load_split
from gumbel_sinkhorn.nn.ranking import PlaceValueCNN
from gumbel_sinkhorn.pretrained import load_model


def read_digits(cnn: PlaceValueCNN, split, chunk: int = 1000):
    """Each image's symbol probabilities ``(N, symbols)`` and value ``(N,)``."""
    probs = []
    with torch.no_grad():
        for index in torch.arange(len(split.labels)).split(chunk):
            pictures = compose(split, index.unsqueeze(-1))  # one-digit pictures (chunk, 28, 28)
            probs.append(cnn.symbol(cnn.digit(pictures.unsqueeze(1))).softmax(-1))
        probs = torch.cat(probs)
        return probs, probs @ cnn.values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="shipped weights name, weights file or run folder")
    parser.add_argument("--output", type=Path, help="figure of true digit against symbol (.png)")
    args = parser.parse_args(argv)
    _, model, _ = load_model(args.model)
    if not isinstance(model.cnn, PlaceValueCNN):
        parser.error(f"{args.model} was not trained with --cnn places")
    test = load_split("test")
    probs, values = read_digits(model.cnn, test)
    symbols = probs.argmax(-1)
    table = torch.zeros(10, model.cnn.symbols)
    table.index_put_((test.labels, symbols), torch.ones(len(symbols)), accumulate=True)
    table /= table.sum(1, keepdim=True)
    print(f"{args.model}: {len(symbols)} MNIST test digits")
    print("| digit | symbol read most often | share | mean value | value std |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    means = []
    for d in range(10):
        v = values[test.labels == d]
        means.append(v.mean().item())
        top = int(table[d].argmax())
        print(f"| {d} | {top} | {table[d, top]:.3f} | {means[-1]:.4f} | {v.std():.4f} |")
    increasing = all(a < b for a, b in zip(means, means[1:], strict=False))
    print(f"mean values increase with the digit: {increasing}")
    weights = model.out.weight[0] if model.head != "classic" else model.out.weight.norm(dim=0)
    print("place weights (leading place first):", [f"{w:.4g}" for w in weights.tolist()])
    if args.output:
        figure(table, values, test.labels, args.output)
    return 0


def figure(table: torch.Tensor, values: torch.Tensor, labels: torch.Tensor, path: Path) -> None:
    """Left: true digit against latent symbol (symbols ordered by the digit read most as them,
    unused ones last). Right: each digit's values, mean and standard deviation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    used = table.mean(0) > 0.01  # read as it for more than 1 % of the digits on average
    order = sorted(range(table.shape[1]), key=lambda s: (not used[s], int(table[:, s].argmax())))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    im = ax.imshow(table[:, order], cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(order)), order)
    ax.set_yticks(range(10), range(10))
    ax.set_xlabel("latent symbol (ordered by the digit read most as it)")
    ax.set_ylabel("true digit (never shown to the model)")
    ax.set_title("share of each digit's test images read as each symbol", fontsize=9)
    fig.colorbar(im, ax=ax)
    per_digit = [values[labels == d] for d in range(10)]
    ax2.errorbar(range(10), [v.mean() for v in per_digit], yerr=[v.std() for v in per_digit],
                 fmt="o", capsize=3)  # fmt: skip
    ax2.set_xticks(range(10))
    ax2.set_xlabel("true digit")
    ax2.set_ylabel("value the model reads (mean ± std)")
    ax2.set_title("a digit's value, learned from set orders alone", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"figure written to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
