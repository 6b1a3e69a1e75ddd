"""What the commands print about their results is true: sums, convergence, metric caveats."""

import re

import pytest

from gumbel_sinkhorn.cli import main


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_operator_demo_calls_a_sample_close_to_a_permutation_only_if_it_is(seed, capsys):
    assert main(["demo", "--seed", str(seed)]) == 0
    out = capsys.readouterr().out
    block = out[out.index("tau=0.01") :].split("\n\n")[0]
    converged = "NOT converged" not in block
    distance = float(re.search(r"from 0 or 1: ([0-9.]+)", block).group(1))
    assert "row sums" in block and "column sums" in block and "converged" in block
    assert ("close to a permutation" in block) == (converged and distance < 0.01), block


def test_the_demo_leaves_torch_print_options_as_they_were(capsys):
    import torch

    before = str(torch.tensor([0.123456]))
    assert main(["demo"]) == 0
    assert str(torch.tensor([0.123456])) == before
