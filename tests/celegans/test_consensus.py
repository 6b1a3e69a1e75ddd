import pytest
import torch
from worm_fixtures import easy_simulation, single_thread, trap_simulation

from gumbel_sinkhorn.celegans import accuracy, fit_vi
from gumbel_sinkhorn.celegans.consensus import fit_consensus
from gumbel_sinkhorn.celegans.experiment import run_method
from gumbel_sinkhorn.celegans.vi import _restart_seeds
from gumbel_sinkhorn.configs.celegans import Settings


@pytest.fixture(autouse=True)
def one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def trap():
    return trap_simulation()


def test_each_round_gives_the_names_every_run_agrees_on(trap):
    fit = dict(steps=150, progress=False, marginal_samples=5)
    seeds = _restart_seeds(0, 2 * 3)
    first = [fit_vi(trap.worms, seed=s, **fit) for s in seeds[:2]]
    assert accuracy(first[0].perm, trap) < 1
    alike = (first[0].perm == first[1].perm) & ~trap.worms.known
    assert 0 < alike.sum() < (~trap.worms.known).sum()
    assert (first[0].perm == trap.perm)[alike].all()  # what both runs say is right here
    named = trap.worms.name(alike, first[0].perm)
    second = [fit_vi(named, seed=s, **fit) for s in seeds[2:4]]
    result = fit_consensus(trap.worms, runs=2, rounds=3, seed=0, **fit)
    # round 2 names nothing more, so the rounds stop there, its better run the answer
    more = (second[0].perm == second[1].perm) & ~named.known
    assert result.agreed == [int(alike.sum()), int(more.sum())] and not more.any()
    assert result.objectives == [f.objectives[0] for f in second]
    kept = min(range(2), key=result.objectives.__getitem__)
    assert result.kept == kept and torch.equal(result.perm, second[kept].perm)
    assert torch.equal(result.marginals, second[kept].marginals)
    assert accuracy(result.perm, trap) == 1.0
    again = fit_consensus(trap.worms, runs=2, rounds=3, seed=0, **fit)
    assert torch.equal(again.perm, result.perm) and again.history == result.history


def test_the_last_round_is_the_answer_even_if_its_runs_agree(trap):
    fit = dict(steps=150, progress=False, marginal_samples=0)
    result = fit_consensus(trap.worms, runs=2, rounds=1, seed=0, **fit)
    alone = [fit_vi(trap.worms, seed=s, **fit) for s in _restart_seeds(0, 2)]
    assert len(result.agreed) == 1 and result.agreed[0] > 0
    assert result.objectives == [f.objectives[0] for f in alone]


def test_naming_neurons_fixes_their_names_and_takes_them_from_the_others():
    worms = easy_simulation().worms
    which = torch.zeros_like(worms.known)
    unknown = (~worms.known[1]).nonzero().flatten()
    i, k = int(unknown[0]), int(worms.mask[1, unknown[0]].nonzero()[-1])
    which[1, i] = True
    names = torch.zeros(worms.known.shape, dtype=torch.long)
    names[1, i] = k
    named = worms.name(which, names)
    assert named.known[1, i] and named.known.sum() == worms.known.sum() + 1
    assert named.mask[1, i].nonzero().flatten().tolist() == [k]
    assert named.mask[1, :, k].nonzero().flatten().tolist() == [i]
    assert torch.equal(named.mask[0], worms.mask[0]) and named.Y is worms.Y
    forbidden = int((~worms.mask[1, i]).nonzero()[0])
    names[1, i] = forbidden
    with pytest.raises(ValueError, match=f"name {forbidden} is not allowed for recorded neuron"):
        worms.name(which, names)
    with pytest.raises(ValueError, match="which must be a bool tensor"):
        worms.name(which.long(), names)
    with pytest.raises(ValueError, match="which must be a bool tensor"):
        worms.name(which, names.float())


def test_naming_that_leaves_a_neuron_without_a_name_is_refused():
    from gumbel_sinkhorn.celegans import Worms

    mask = torch.tensor([[[True, True], [False, True]]])
    worms = Worms(torch.zeros(1, 2, 3), mask, torch.zeros(1, 2, dtype=torch.bool),
                  torch.eye(2, dtype=torch.bool))  # fmt: skip
    with pytest.raises(ValueError, match="names given in worm 0 leave recorded neuron 1 without"):
        worms.name(torch.tensor([[True, False]]), torch.tensor([[1, 0]]))


def test_bad_options_and_the_tables_settings(trap):
    with pytest.raises(ValueError, match="'map' has no randomness"):
        fit_consensus(trap.worms, method="map")
    with pytest.raises(ValueError, match="runs must be"):
        fit_consensus(trap.worms, runs=1)
    with pytest.raises(ValueError, match="rounds must be"):
        fit_consensus(trap.worms, rounds=0)
    settings = Settings(steps=150, consensus=2, rounds=3)
    result = run_method(trap.worms, "gumbel-sinkhorn", settings, seed=0)
    assert result.agreed and accuracy(result.perm, trap) == 1.0
    assert run_method(trap.worms, "map", settings, seed=0).agreed == []  # one run
    with pytest.raises(ValueError, match="consensus must be"):
        Settings(consensus=0)
