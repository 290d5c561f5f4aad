"""Wall time of one small grid of runs, one after another and through the default process pool.

The grid: the cpu profile's baseline (notebook 00's variant) for 4 seeds and 3 epochs, each run
trained from scratch in a fresh runs folder, through the study runner (fgvc_lib.study) with
``executor="inline"`` (sequential, in this process) and ``executor="local"`` (one single-threaded
run per CPU core). The embedded pretraining and the synthetic data are prepared first and not timed.
The two grids must give the same accuracies (same seeds): the last line is ``speedup: X``, the
sequential time over the pool's.

    python benchmarks/run_grid.py [--seeds 4] [--epochs 3]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def timed_grid(executor: str, seeds: int, epochs: int, runs_root: str):
    from fgvc_lib.papers import synthetic_dataset
    from fgvc_lib.study import Study

    os.environ["FGVC_RUNS_DIR"] = os.path.join(runs_root, executor)
    study = Study(synthetic_dataset.STUDY, profile="cpu", seeds=seeds, epochs=epochs, executor=executor)
    started = time.perf_counter()
    study.run()
    seconds = time.perf_counter() - started
    return seconds, [run.record.accuracy for run in study.runs_of("baseline")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    from fgvc_lib.papers import synthetic_dataset
    from fgvc_lib.study import Study
    from fgvc_lib.study.executors import cpu_cores

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FGVC_RESULTS_DIR"] = os.path.join(tmp, "results")
        warm = Study(synthetic_dataset.STUDY, profile="cpu", seeds=1, epochs=args.epochs)
        warm.data()
        warm.backbone_spec.build()  # the one-off pretraining (cached), outside the timings
        sequential, seq_acc = timed_grid("inline", args.seeds, args.epochs, tmp)
        pooled, pool_acc = timed_grid("local", args.seeds, args.epochs, tmp)
    print(f"cores: {cpu_cores()}, runs: {args.seeds}, epochs: {args.epochs}")
    print(f"sequential: {sequential:.1f} s, accuracies {[round(a, 2) for a in seq_acc]}")
    print(f"pool:       {pooled:.1f} s, accuracies {[round(a, 2) for a in pool_acc]}")
    print(f"same accuracies: {seq_acc == pool_acc}")
    print(f"speedup: {sequential / pooled:.2f}")


if __name__ == "__main__":
    main()
