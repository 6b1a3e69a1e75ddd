import shutil

import pytest
import torch

from gumbel_sinkhorn.data import CorruptFileError
from gumbel_sinkhorn.data.celegans import FILES, SHIPPED, data_file, load_connectome


def test_counts_match_the_tables_sources():
    c = load_connectome()
    assert len(c.names) == 279 and len(set(c.names)) == 279
    assert [c.regions.count(r) for r in "HMT"] == [159, 88, 32]
    assert c.unplaced == ("VC06",)  # no position; its one row is a neuromuscular junction
    assert int((c.gap > 0).sum()) == 1031  # one EJ row per side, as in the Varshney data
    assert torch.equal(c.gap, c.gap.T)
    assert int((c.chemical > 0).sum()) == 2194
    assert int(c.chemical.sum()) == 6394  # synapses of the S and Sp rows (R, Rp repeat them)
    pattern = c.pattern
    assert torch.equal(pattern, pattern.T) and not pattern.diagonal().any()
    assert int(pattern.sum()) // 2 == 2287 and int(pattern.sum(1).min()) >= 1
    assert float(c.positions.min()) > 0 and float(c.positions.max()) < 1


def test_names_differing_in_case_are_one_neuron():
    c = load_connectome()
    assert "AVFL" in c.names and not any(name != name.upper() for name in c.names)
    assert c.index("avfl") == c.index("AVFL")
    assert int(c.chemical[c.index("AVFL"), c.index("AVFR")]) == 7  # S 1 + Sp 6
    with pytest.raises(ValueError, match="no neuron named 'XYZ'"):
        c.index("XYZ")


def test_files_in_the_data_root_are_used_and_checked(tmp_path, monkeypatch):
    folder = tmp_path / "celegans"
    folder.mkdir()
    for name in FILES:
        shutil.copy(SHIPPED / name, folder / name)
    monkeypatch.setenv("GUMBEL_SINKHORN_DATA", str(tmp_path))
    assert data_file("NeuronType.csv") == folder / "NeuronType.csv"
    assert len(load_connectome().names) == 279
    (folder / "NeuronType.csv").write_text("Neuron,Soma Position,Soma Region\nAVAL,0.5,H\n")
    with pytest.raises(CorruptFileError, match="ce9498afdd64e39bc91a57ca01c98ba8"):
        load_connectome()
    with pytest.raises(ValueError, match="filename must be one of"):
        data_file("neurons.csv")


def test_missing_tables_say_where_they_were_looked_for(tmp_path, monkeypatch):
    from gumbel_sinkhorn.data import DatasetNotFoundError, celegans

    monkeypatch.setattr(celegans, "SHIPPED", tmp_path / "nothing")
    with pytest.raises(DatasetNotFoundError, match="NeuronType.csv \\(md5 ce9498af"):
        load_connectome(root=tmp_path)
