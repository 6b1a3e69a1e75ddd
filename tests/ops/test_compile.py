"""The ops inside torch.compile: eager results, and one graph where the op allows it."""

import pytest
import torch

import gumbel_sinkhorn as gs


def test_permutation_utilities_compile_to_one_graph():
    perm = gs.random_permutation(4, 6, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 6, 3)
    for fn in (
        lambda p: gs.permute(x, p, dim=-2),
        lambda p: gs.permutation_matrix(p),
        lambda p: gs.invert_permutation(p),
    ):
        compiled = torch.compile(fn, fullgraph=True, backend="eager")  # fails on a graph break
        torch.testing.assert_close(compiled(perm), fn(perm))


@pytest.mark.filterwarnings("ignore:Dynamo does not know how to trace")  # SciPy's solver
def test_sinkhorn_and_matching_work_inside_a_compiled_model():
    net = torch.nn.Linear(5, 5)

    def model(x):
        log_alpha = net(x)
        P = gs.gumbel_sinkhorn(log_alpha, tau=0.5, noise_factor=0.0)
        return P.mT @ x, gs.permute(x, gs.matching(log_alpha), dim=-2)

    x = torch.randn(8, 5, 5)
    got = torch.compile(model, backend="eager")(x)  # graph breaks at the solvers' host syncs
    for a, b in zip(got, model(x), strict=True):
        torch.testing.assert_close(a, b)
