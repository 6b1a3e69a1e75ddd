"""Combining the records of several ``reproduce`` files."""

import pytest

from gumbel_sinkhorn.celegans.experiment import merge
from gumbel_sinkhorn.configs.celegans import Settings
from gumbel_sinkhorn.errors import InvalidValueError


def report(records, **settings):
    return {
        "table": "candidates",
        "settings": Settings(**settings).to_dict(),
        "records": records,
        "wall_seconds": 10.0,
    }


def record(sim, **accuracy):
    return {"cell": "10 candidates, 1 worm", "sim": sim, "mean_candidates": 10.0,
            "accuracy": accuracy, "seconds": {m: 1.0 for m in accuracy}}  # fmt: skip


def test_merge_combines_methods_of_the_same_cell_and_simulation():
    vi = report([record(0, **{"gumbel-sinkhorn": 0.9}), record(1, **{"gumbel-sinkhorn": 0.8})])
    baselines = report([record(0, naive=0.7, map=0.6), record(2, naive=0.5)])
    merged = merge([vi, baselines])
    by_sim = {r["sim"]: r for r in merged["records"]}
    assert by_sim[0]["accuracy"] == {"gumbel-sinkhorn": 0.9, "naive": 0.7, "map": 0.6}
    assert set(by_sim[0]["seconds"]) == {"gumbel-sinkhorn", "naive", "map"}
    assert by_sim[1]["accuracy"] == {"gumbel-sinkhorn": 0.8}
    assert by_sim[2]["accuracy"] == {"naive": 0.5}
    assert merged["wall_seconds"] == 20.0
    # the inputs are left as they were
    assert vi["records"][0]["accuracy"] == {"gumbel-sinkhorn": 0.9}


def test_merge_keeps_the_first_value_of_a_method_found_twice():
    first = report([record(0, naive=0.7)])
    again = report([record(0, naive=0.1, map=0.6)])
    merged = merge([first, again])
    assert merged["records"] == [
        {**record(0, naive=0.7, map=0.6), "seconds": {"naive": 1.0, "map": 1.0}}
    ]


def test_merge_refuses_other_settings():
    with pytest.raises(InvalidValueError, match="different tables or settings"):
        merge([report([record(0, naive=0.7)]), report([record(0, map=0.6)], steps=1500)])
