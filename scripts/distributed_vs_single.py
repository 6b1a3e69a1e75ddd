"""Does a K-process torchrun reach the accuracy of 1 process at the same global batch size?

Trains the same jigsaw model (embedded 8x8 digits, 2x2 puzzles: no download) with 1 process and
with ``torchrun --nproc-per-node K`` (gloo, CPU) for a few seeds, and prints a markdown table of the
final test metrics. Each rank trains on half of every global batch; only the Gumbel noise differs
(it is drawn per rank), so the runs are not bit-identical, but should be equally good.

    python scripts/distributed_vs_single.py --seeds 0 1 2 --epochs 10 --procs 2
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train(run_dir: Path, seed: int, epochs: int, procs: int) -> tuple[dict, float]:
    command = [sys.executable, "-m", "gumbel_sinkhorn", "jigsaw", "train", "--dataset", "digits",
               "--grid", "2", "--epochs", str(epochs), "--batch-size", "64", "--lr", "2e-3",
               "--seed", str(seed), "--quiet", "--run-dir", str(run_dir)]  # fmt: skip
    if procs > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", str(procs)]  # fmt: skip
        command = launcher + command[1:]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return rows[-1], seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--procs", type=int, default=2)
    args = parser.parse_args()
    keys = ("loss", "kendall_tau", "prop_wrong", "prop_exact")
    print("| seed | processes | " + " | ".join(keys) + " | wall s |")
    print("|---" * (len(keys) + 3) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for procs in (1, args.procs):
                row, seconds = train(Path(tmp) / f"s{seed}-p{procs}", seed, args.epochs, procs)
                cells = " | ".join(f"{row[k]:.4f}" for k in keys)
                print(f"| {seed} | {procs} | {cells} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
