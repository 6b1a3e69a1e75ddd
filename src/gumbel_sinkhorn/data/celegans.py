"""The C. elegans connectome (Varshney et al. 2011) and soma positions, from WormAtlas' tables.

>>> c = load_connectome()
>>> len(c.names), int(c.pattern.sum()) // 2, c.unplaced
(279, 2287, ('VC06',))
>>> c.names[:3], c.positions[:3].tolist()
(('ADAL', 'ADAR', 'ADEL'), [0.21, 0.21, 0.21])

Two CSV files, ``NeuronConnect.csv`` (edge list) and ``NeuronType.csv`` (one row per neuron),
are looked for in ``<data root>/celegans/`` (the ``root`` argument, else ``$GUMBEL_SINKHORN_DATA``)
and otherwise taken from the copy shipped inside the package; either way each must match its MD5
(else ``CorruptFileError``). How the tables are read:

- names are compared in upper case: the edge list spells AVFL / AVFR in lower case in one row,
  which joins the upper-case neurons (two spellings of one name are never two neurons);
- the neurons are the 279 rows of ``NeuronType.csv``, in its order; a neuron of the edge list
  without a position (VC06, whose only row is a neuromuscular junction) cannot be placed along
  the body, so it is left out and listed in ``Connectome.unplaced``;
- chemical synapses are counted from the sender's rows (S, Sp), which the receiver's rows (R, Rp)
  repeat; gap junctions (EJ) from either side; neuromuscular junctions (NMJ) are not neuron pairs
  and are skipped; the three gap junctions of a neuron with itself are kept in ``gap`` but not in
  ``pattern``.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..errors import InvalidValueError
from ..runs import ENV_VAR
from ._files import CorruptFileError, DatasetNotFoundError, check_md5

FILES = {
    "NeuronConnect.csv": "382ac96d36c5faf4c001b9c6ccb4b966",
    "NeuronType.csv": "ce9498afdd64e39bc91a57ca01c98ba8",
}
SHIPPED = Path(__file__).with_name("celegans_csv")
_CHEMICAL, _RECEIVED, _GAP, _MUSCLE = ("S", "Sp"), ("R", "Rp"), "EJ", "NMJ"
_read: dict[tuple, Connectome] = {}


@dataclass(frozen=True)
class Connectome:
    """Neurons (names, soma positions, regions) and their synapse counts.

    ``chemical[i, j]``: chemical synapses from neuron ``i`` to ``j``; ``gap[i, j]``: gap junctions
    between them (symmetric). ``pattern`` is the symmetrised wiring diagram, where the papers'
    weights may be non-zero: a synapse of either kind in either direction, no diagonal.
    """

    names: tuple[str, ...]
    positions: torch.Tensor  # (N,) float64: 0 = head tip, 1 = tail tip
    regions: tuple[str, ...]  # H (head), M (mid-body), T (tail)
    chemical: torch.Tensor  # (N, N) int64
    gap: torch.Tensor  # (N, N) int64
    unplaced: tuple[str, ...]

    @property
    def pattern(self) -> torch.Tensor:
        """Bool ``(N, N)``, symmetric, False on the diagonal."""
        linked = (self.chemical > 0) | (self.chemical.T > 0) | (self.gap > 0)
        return linked & ~torch.eye(len(self.names), dtype=torch.bool)

    def index(self, name: str) -> int:
        """The index of a neuron, by name in any case (ValueError naming it if unknown)."""
        try:
            return self.names.index(name.upper())
        except ValueError:
            raise InvalidValueError(
                f"no neuron named {name!r} among the {len(self.names)}"
            ) from None


def data_file(filename: str, root: str | os.PathLike | None = None) -> Path:
    """The path of one of the two tables: in ``<root>/celegans/`` if there, else the shipped one.

    >>> data_file("NeuronType.csv", root="/nowhere").name
    'NeuronType.csv'
    """
    if filename not in FILES:
        raise InvalidValueError(f"filename must be one of {tuple(FILES)}, got {filename!r}")
    if root is None:
        root = os.environ.get(ENV_VAR) or None
    tried = []
    if root is not None:
        path = Path(root).expanduser() / "celegans" / filename
        if path.is_file():
            return path
        tried.append(str(path.parent))
    if not (SHIPPED / filename).is_file():
        raise DatasetNotFoundError(
            f"C. elegans table {filename} (md5 {FILES[filename]}) is neither in "
            f"{tried + [str(SHIPPED)]}: put WormAtlas' tables as CSV into DIR/celegans/ and set "
            f"{ENV_VAR}=DIR, or reinstall the package"
        )
    return SHIPPED / filename


def load_connectome(root: str | os.PathLike | None = None) -> Connectome:
    """Read and check both tables (see the module's docstring); ``CorruptFileError`` if a file
    is not the expected one. A table already read (same path, size and time) is not read again;
    each call returns its own copy of the tensors."""
    paths = (data_file("NeuronType.csv", root), data_file("NeuronConnect.csv", root))
    key = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    if key not in _read:
        _read[key] = _parse(*paths)
    c = _read[key]
    return replace(c, positions=c.positions.clone(), chemical=c.chemical.clone(), gap=c.gap.clone())


def _parse(type_path: Path, connect_path: Path) -> Connectome:
    neurons = _rows(type_path, ("Neuron", "Soma Position", "Soma Region"))
    edges = _rows(connect_path, ("Neuron 1", "Neuron 2", "Type", "Nbr"))
    names = tuple(row[0].strip().upper() for row in neurons)
    index = {name: i for i, name in enumerate(names)}
    n = len(names)
    chemical = torch.zeros(n, n, dtype=torch.int64)
    gap = torch.zeros(n, n, dtype=torch.int64)
    unplaced = set()
    for first, second, kind, count, *_ in edges:
        a, b, kind = first.strip().upper(), second.strip().upper(), kind.strip()
        if kind == _MUSCLE:
            if a not in index:
                unplaced.add(a)
            continue
        for name in (a, b):
            if name not in index:
                unplaced.add(name)
        if a not in index or b not in index:
            continue
        if kind in _CHEMICAL:
            chemical[index[a], index[b]] += int(count)
        elif kind == _GAP:
            gap[index[a], index[b]] += int(count)
        elif kind not in _RECEIVED:
            raise CorruptFileError(f"NeuronConnect.csv: unknown synapse type {kind!r}")
    return Connectome(
        names=names,
        positions=torch.tensor([float(row[1]) for row in neurons], dtype=torch.float64),
        regions=tuple(row[2].strip() for row in neurons),
        chemical=chemical,
        gap=gap,
        unplaced=tuple(sorted(unplaced)),
    )


def _rows(path: Path, header: tuple[str, ...]) -> list[list[str]]:
    data = path.read_bytes()
    check_md5(data, FILES[path.name], str(path))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    if tuple(cell.strip() for cell in rows[0][: len(header)]) != header:
        raise CorruptFileError(f"{path}: header {rows[0]} does not start with {list(header)}")
    return [row for row in rows[1:] if row]
