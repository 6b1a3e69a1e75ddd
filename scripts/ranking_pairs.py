"""Where a ranking model's order goes wrong: pairs of items by the first digit they differ in.

    GUMBEL_SINKHORN_DATA=/data python scripts/ranking_pairs.py rank-sinkhorn-20k [--n 15]

For test sets of n numbers (drawn with seed 0), every neighbouring pair
in the true order is classed by the place of the first digit in which its two numbers differ
(thousands, hundreds, tens, units), and the share of those pairs that the model's scores put in
the right order is printed per class (a set is ranked exactly right when all its neighbours are).
A model that reads every digit but weighs the places badly is right on the thousands and wrong
on the lower places.

Then the scores are fitted by least squares as a sum of one value per place and digit (the
best a scorer that adds up its places could do) and, per place, the mean step between
consecutive digits' values is set against the spread of what the fit leaves (the residual's
robust standard deviation): a place whose step is far below that noise cannot order its pairs.
"""

from __future__ import annotations

import argparse

import torch

from gumbel_sinkhorn.data.multidigit import compose, load_split, sample_sets
from gumbel_sinkhorn.pretrained import load_model
from gumbel_sinkhorn.tasks.ranking import score_ranks

PLACES = ("thousands", "hundreds", "tens", "units")  # of a 4-digit number


def neighbour_accuracy(scores: torch.Tensor, numbers: torch.Tensor, digits: int):
    """Per place of the first differing digit: (neighbouring pairs, share in the right order)."""
    order = numbers.argsort(-1)
    values, ranked = numbers.gather(-1, order), scores.gather(-1, order)
    low, high = values[:, :-1], values[:, 1:]
    place = torch.zeros_like(low)  # 0 = leading digit
    for p in range(digits - 1, -1, -1):
        scale = 10 ** (digits - 1 - p)
        place = torch.where(low // scale % 10 != high // scale % 10, p, place)
    right = ranked[:, 1:] > ranked[:, :-1]
    counts = [int((place == p).sum()) for p in range(digits)]
    return [(c, float(right[place == p].float().mean())) for p, c in enumerate(counts)]


def place_fit(scores: torch.Tensor, numbers: torch.Tensor, digits: int):
    """Least squares ``score ~ sum_p value[p, digit_p] + c``.

    Returns the mean step per place and the residual's spread: its standard deviation and its
    robust one (1.4826 x median absolute deviation, blind to the few misread digits)."""
    s = scores.flatten().double()
    places = [numbers.flatten() // 10 ** (digits - 1 - p) % 10 for p in range(digits)]
    onehot = [torch.nn.functional.one_hot(d, 10).double() for d in places]
    design = torch.cat([*onehot, torch.ones(len(s), 1, dtype=torch.float64)], 1)
    fit = torch.linalg.lstsq(design, s.unsqueeze(1), driver="gelsd").solution.flatten()
    residual = s - design @ fit
    values = fit[: 10 * digits].reshape(digits, 10)
    steps = (values[:, 1:] - values[:, :-1]).mean(1)
    mad = (residual - residual.median()).abs().median().item() * 1.4826
    return steps.tolist(), residual.std().item(), mad


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="shipped weights name, weights file or run folder")
    parser.add_argument("--n", type=int, default=15, help="items per set")
    parser.add_argument("--sets", type=int, default=1000)
    args = parser.parse_args(argv)
    _, model, _ = load_model(args.model)
    digits = model.cnn.digits
    test = load_split("test")
    sets = sample_sets(test, args.sets, args.n, digits, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        scores = torch.cat([model.scores(compose(test, i)) for i in sets.index.split(100)])
    exact = score_ranks(scores.argsort(-1).argsort(-1), sets.ranks)["exact_match"]
    print(f"{args.model}, n = {args.n}, {args.sets} sets: exact match {exact:.3f}")
    print("| first differing digit | neighbouring pairs | in the right order |")
    print("| --- | ---: | ---: |")
    names = PLACES[len(PLACES) - digits :] if digits <= 4 else [f"place {p}" for p in range(digits)]
    for name, (count, share) in zip(
        names, neighbour_accuracy(scores, sets.numbers, digits), strict=True
    ):
        print(f"| {name} | {count} | {share:.3f} |")
    steps, std, noise = place_fit(scores, sets.numbers, digits)
    print(f"\nscores fitted by a value per place and digit: residual std {std:.4g}, "
          f"robust {noise:.4g}")  # fmt: skip
    print("| place | mean step of its digits | step / robust residual std |")
    print("| --- | ---: | ---: |")
    for name, step in zip(names, steps, strict=True):
        print(f"| {name} | {step:.4g} | {step / noise:.3g} |")


if __name__ == "__main__":
    main()
