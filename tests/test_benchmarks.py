"""The operator benchmarks still run, measure what they claim, and check their contenders agree."""

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _measure  # noqa: E402
import jigsaw_throughput  # noqa: E402
import matching as matching_bench  # noqa: E402
import sinkhorn as sinkhorn_bench  # noqa: E402
import thread_scaling  # noqa: E402
from gumbel_sinkhorn.ops import _native  # noqa: E402


def test_peak_bytes_counts_tensors_alive_at_once():
    def two_then_one():
        a = torch.empty(1000, dtype=torch.float32)
        b = torch.empty(1000, dtype=torch.float32)
        del a, b
        torch.empty(1000, dtype=torch.float32)

    assert _measure.peak_bytes(two_then_one) == 8000


def test_interleaved_best_keeps_each_fastest_run():
    calls = iter([0.0] * 100)
    best = _measure.interleaved_best({"a": lambda: next(calls), "b": lambda: None}, repeat=3)
    assert set(best) == {"a", "b"} and all(0 <= t < 1 for t in best.values())


def test_sinkhorn_benchmark_rows_agree_with_the_seed():
    results = sinkhorn_bench.rows([(3, 4)], [2], repeat=1)
    names = [r["name"] for r in results]
    assert names[0] == "seed" and {"ours", "ours implicit"} <= set(names)
    assert all(r["deviation"] < 1e-5 and r["fwd"] > 0 for r in results)
    assert all(r["peak"] > 0 for r in results if r["name"] != "OTT-JAX")  # torch's profiler
    assert "| (3, 4) | 2 | ours |" in sinkhorn_bench.table(results)


def test_the_timed_backward_is_the_gradient_of_the_weighted_sum():
    gen = torch.Generator().manual_seed(0)
    scores, weights = torch.randn(2, 5, 5, generator=gen), torch.randn(2, 5, 5, generator=gen)
    leaf = scores.clone().requires_grad_()
    for _ in range(2):  # nothing accumulates between calls
        grad = sinkhorn_bench.forward_backward(lambda t: t.softmax(-1), leaf, weights)
    x = scores.clone().requires_grad_()
    (torch.softmax(x, -1) * weights).sum().backward()
    torch.testing.assert_close(grad, x.grad)
    assert leaf.grad is None


def test_thread_scaling_times_every_part_at_both_thread_counts():
    results = thread_scaling.rows([(2, 8)], [3], repeat=1)
    by_part = {r["part"]: r for r in results}
    assert {"harness only", "ours fwd+bwd"} <= set(by_part)
    assert all(r["t1"] > 0 and r["tt"] > 0 for r in results if r["part"] != "its iterations")
    if _native.usable(torch.zeros(1, 2, 2)):
        whole, one = by_part["native forward"], by_part["native forward, 1 iteration"]
        assert by_part["its iterations"]["t1"] == pytest.approx(whole["t1"] - one["t1"])
    assert "| (2, 8) | 3 | harness only |" in thread_scaling.table(results, 2)


def test_matching_benchmark_checks_every_total():
    results = matching_bench.rows([(5, 4)], repeat=1)
    assert {"SciPy loop", "ours", "ours, SciPy fallback"} <= {r["name"] for r in results}
    assert "| (5, 4) | ours |" in matching_bench.table(results)


@pytest.mark.skipif(not os.environ.get("GUMBEL_SINKHORN_DATA"), reason="needs MNIST")
def test_jigsaw_throughput_runs_both_pipelines(capsys):
    before = torch.get_num_threads()
    try:
        jigsaw_throughput.main(["--grids", "2", "--steps", "2", "--batch", "8", "--repeat", "1"])
    finally:
        torch.set_num_threads(before)
    row = capsys.readouterr().out.splitlines()[-1].split()
    assert row[0] == "2x2" and row[1] == "7,168" and float(row[2]) > 0 and float(row[3]) > 0
