import pytest
import torch
from worm_fixtures import single_thread, tiny_connectome

from gumbel_sinkhorn.celegans import (
    SimulationConfig,
    Worms,
    accuracy,
    candidate_mask,
    check_assignable,
    random_weights,
    simulate,
)
from gumbel_sinkhorn.data.celegans import load_connectome


@pytest.fixture(autouse=True)
def one_thread():
    with single_thread():
        yield


@pytest.fixture
def tiny():
    return tiny_connectome()


def test_weights_are_antisymmetric_on_the_pattern_with_the_papers_radius():
    pattern = load_connectome().pattern
    W = random_weights(pattern, generator=torch.Generator().manual_seed(0))
    assert torch.equal(W, -W.T)
    assert (W[~pattern] == 0).all() and (W[pattern] != 0).all()
    eigenvalues = torch.linalg.eigvals(W)
    assert float(eigenvalues.abs().max()) == pytest.approx(1 / 1.1, rel=1e-9)
    assert float(eigenvalues.real.abs().max()) < 1e-9  # undamped oscillations
    with pytest.raises(ValueError, match="symmetric bool"):
        random_weights(torch.ones(3, 4, dtype=torch.bool))


def test_simulation_truth_is_consistent_with_what_inference_sees(tiny):
    config = SimulationConfig(n_worms=3, n_steps=40, eta=0.0, n_known=4)
    sim = simulate(config, seed=3, connectome=tiny)
    worms, n = sim.worms, 12
    assert worms.Y.shape == (3, n, 40) and worms.mask.shape == (3, n, n)
    rows = torch.arange(n)
    for j in range(3):
        assert sorted(sim.perm[j].tolist()) == list(range(n))
        assert worms.mask[j, rows, sim.perm[j]].all()  # the true name is always allowed
        assert int(worms.known[j].sum()) == 4
        known = worms.known[j]
        assert (worms.mask[j][known].sum(-1) == 1).all()
        # nobody else may take a known neuron's name
        assert (worms.mask[j][:, sim.perm[j][known]].sum(0) == 1).all()
    # eta = 0: a neuron may only take the names at its own position (groups of three)
    assert worms.mean_candidates <= 3
    # the recordings are the named activity in the recorded order, sharing the weights
    X = torch.zeros(n, 40, dtype=torch.float64)
    X[sim.perm[0]] = worms.Y[0].double()
    residual = X[:, 1:] - sim.weights @ X[:, :-1]
    assert float(residual.std()) == pytest.approx(1.0, abs=0.15)
    assert accuracy(sim.perm, sim) == 1.0


def test_same_seed_same_simulation(tiny):
    config = SimulationConfig(n_worms=2, n_steps=30, eta=0.05, n_known=2, position_noise=0.01)
    a, b = simulate(config, seed=5, connectome=tiny), simulate(config, seed=5, connectome=tiny)
    assert torch.equal(a.worms.Y, b.worms.Y) and torch.equal(a.perm, b.perm)
    assert torch.equal(a.worms.mask, b.worms.mask)
    c = simulate(config, seed=6, connectome=tiny)
    assert not torch.equal(a.worms.Y, c.worms.Y)


def test_papers_candidate_counts_on_the_real_connectome():
    sim = simulate(SimulationConfig(n_worms=1, n_steps=2, eta=0.0075, n_known=25), seed=0)
    assert 9 <= sim.worms.mean_candidates <= 11


def test_a_neuron_left_without_a_name_is_one_error_naming_it(tiny):
    # position noise with eta = 0 leaves every neuron with no name at its observed position
    config = SimulationConfig(n_worms=1, n_steps=5, eta=0.0, n_known=0, position_noise=0.01)
    with pytest.raises(ValueError, match=r"leave recorded neuron \d+ \(truly N\d\d\) without"):
        simulate(config, seed=0, connectome=tiny)
    positions = torch.tensor([0.1, 0.1, 0.5])
    # both neurons at 0.1 told they are neuron 0: the first is left with nothing
    with pytest.raises(ValueError, match="recorded neuron AVAL without any allowed name"):
        candidate_mask(positions, positions, 0.01, known={0: 0, 1: 0}, labels=["AVAL", "B", "C"])
    with pytest.raises(ValueError, match="out of range"):
        candidate_mask(positions, positions, 0.01, known={0: 7})


def test_no_complete_assignment_names_a_neuron():
    # three recorded neurons competing for two names (Hall's condition fails)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool)
    with pytest.raises(ValueError, match="no complete assignment: recorded neuron C gets no name"):
        check_assignable(mask, ["A", "B", "C", "D"])


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("eta", -0.1, r"eta must be in \[0, inf\)"),
        ("n_worms", 0, "n_worms must be an integer >= 1"),
        ("n_known", -1, "n_known must be an integer >= 0"),
        ("radius_factor", 0.9, "radius_factor must be > 1"),
        ("n_steps", 1, "n_steps must be an integer >= 2"),
    ],
)
def test_bad_settings_are_refused(option, value, message):
    with pytest.raises(ValueError, match=message):
        SimulationConfig(**{option: value})


def test_too_many_known_neurons(tiny):
    with pytest.raises(ValueError, match="n_known must be at most the 12 neurons"):
        simulate(SimulationConfig(n_known=13, n_steps=5), connectome=tiny)


def test_worms_check_their_shapes(tiny):
    worms = simulate(SimulationConfig(n_steps=5, eta=0.0, n_known=0), connectome=tiny).worms
    with pytest.raises(ValueError, match=r"mask must be a bool tensor of shape \(1, 12, 12\)"):
        Worms(worms.Y, worms.mask[:, :3], worms.known, worms.pattern)
    with pytest.raises(TypeError, match="Y must have a floating-point dtype"):
        Worms(worms.Y.long(), worms.mask, worms.known, worms.pattern)
