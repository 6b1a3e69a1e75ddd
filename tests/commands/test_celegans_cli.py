import json

import pytest
import torch

from gumbel_sinkhorn import cli


def main(argv):
    return cli.main(["celegans", *argv])


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_simulate_then_infer(tmp_path, capsys):
    sim = tmp_path / "sim.pt"
    assert main(["simulate", "--worms", "2", "--time-steps", "30", "--output", str(sim)]) == 0
    assert "candidate names on average" in capsys.readouterr().out
    out = tmp_path / "result.json"
    figure = tmp_path / "posterior.png"
    argv = ["infer", "--simulation", str(sim), "--steps", "3", "--quiet", "--output", str(out)]
    assert main([*argv, "--posterior-figure", str(figure), "--neurons", "3"]) == 0
    result = json.loads(out.read_text())
    assert 0 <= result["accuracy"] <= 1 and len(result["perm"]) == 2
    assert len(result["objectives"]) == 1
    assert main([*argv, "--restarts", "2"]) == 0
    assert "final objectives of the restarts: " in capsys.readouterr().out
    assert len(json.loads(out.read_text())["objectives"]) == 2
    assert main([*argv, "--consensus", "2", "--rounds", "2"]) == 0
    text = capsys.readouterr().out
    assert "named alike by every run, round by round: [" in text
    assert "final objectives of the last round's runs: " in text
    assert 1 <= len(json.loads(out.read_text())["agreed"]) <= 2
    assert figure.stat().st_size > 0
    assert (
        main(["infer", "--simulation", str(sim), "--method", "mcmc", "--sweeps", "2", "--quiet"])
        == 0
    )
    capsys.readouterr()
    mcmc = ["infer", "--simulation", str(sim), "--method", "mcmc", "--sweeps", "2", "--quiet"]
    assert main([*mcmc, "--antisymmetric"]) == 2
    assert "--antisymmetric is an option of the VI methods and MAP" in capsys.readouterr().err
    for method in ("mcmc", "map"):
        assert main([*mcmc[:3], "--method", method, "--quiet", "--consensus", "3"]) == 2
        assert "--consensus is an option of the VI methods" in capsys.readouterr().err


def test_reproduce_writes_records_table_and_figure(tmp_path, capsys):
    out, figure = tmp_path / "t.json", tmp_path / "t.png"
    argv = [
        "reproduce",
        "--table",
        "candidates",
        "--sims",
        "1",
        "--methods",
        "naive",
        "--steps",
        "1",
        "--n-steps",
        "10",
        "--quiet",
        "--output",
        str(out),
        "--figure",
        str(figure),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| naive VI |" in text and "(0.79)" in text and figure.stat().st_size > 0
    records = json.loads(out.read_text())["records"]
    assert len(records) == 8 and all("naive" in r["accuracy"] for r in records)
    assert main(argv) == 0  # a rerun finds every record done
    assert len(json.loads(out.read_text())["records"]) == 8
    capsys.readouterr()
    # a file written before lr_weights existed (the weights then used lr) resumes too
    old = json.loads(out.read_text())
    del old["settings"]["lr_weights"]
    out.write_text(json.dumps(old))
    assert main(argv) == 0
    assert len(json.loads(out.read_text())["records"]) == 8
    capsys.readouterr()
    # other settings into the same file: refused, and the records stay
    assert main([*argv, "--lr-weights", "0.01"]) == 2
    assert "holds the records of another table or other settings" in capsys.readouterr().err
    assert len(json.loads(out.read_text())["records"]) == 8
    # two worker processes: the same records
    parallel = tmp_path / "parallel.json"
    argv_parallel = [*argv, "--workers", "2"]
    argv_parallel[argv.index("--output") + 1] = str(parallel)
    assert main(argv_parallel) == 0
    capsys.readouterr()

    def accuracies(path):
        return {
            (r["cell"], r["sim"]): r["accuracy"] for r in json.loads(path.read_text())["records"]
        }

    assert accuracies(parallel) == accuracies(out)
    # a second process on some cells only, merged when the table is printed
    other = tmp_path / "other.json"
    argv[argv.index("--output") + 1] = str(other)
    assert main([*argv, "--cells", "60 candidates, 4"]) == 0
    assert len(json.loads(other.read_text())["records"]) == 1
    capsys.readouterr()
    assert main(["table", "--results", str(out), str(other)]) == 0
    assert "| naive VI |" in capsys.readouterr().out


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["simulate", "--eta", "-1", "--output", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "\n" not in err.strip() and "--eta must be in [0, inf), got -1.0" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--seed", "-1", "--output", str(tmp_path / "x.pt")])
    assert exit_info.value.code == 2
    assert "argument --seed: expected an integer >= 0, got '-1'" in capsys.readouterr().err
    assert main(["simulate", "--output", str(tmp_path / "x.json")]) == 2
    assert "expected a .pt file name" in capsys.readouterr().err
    argv = [
        "simulate",
        "--eta",
        "0",
        "--position-noise",
        "0.05",
        "--time-steps",
        "5",
        "--output",
        str(tmp_path / "x.pt"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "without any allowed name" in err and "truly" in err
    assert main(["infer", "--simulation", str(tmp_path / "missing.pt")]) == 2
    assert "no simulation file" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_text("not a simulation")
    assert main(["infer", "--simulation", str(bad)]) == 2
    assert "is not a simulation" in capsys.readouterr().err
    assert main(["table", "--results", str(tmp_path / "x.pt")]) == 2
    assert "no results file" in capsys.readouterr().err
