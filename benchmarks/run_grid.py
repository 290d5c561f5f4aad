"""Wall time of one small grid of runs, one after another and through the process pool.

The grid: notebook 00's plan in the cpu profile (its baseline's accuracies compared) for 4 seeds and 3 epochs, each run
trained from scratch in a fresh runs folder, through the study runner (fgvc_lib.study) with
``executor="inline"`` (sequential, in this process) and ``executor="local"`` (by default one
single-threaded run per CPU core, or one run per GPU). ``--workers 1,2,4`` times the pool at each of
those sizes instead: on a machine with one GPU that is 1, 2 or 4 runs sharing it, the measurement behind
the default of one run per GPU (issue 20, item 4). The embedded pretraining and the synthetic data are
prepared first and not timed. Every grid must give the same accuracies on a CPU (same seeds; on a GPU
they agree to rounding): the last line is ``speedup: X``, the sequential time over the best pool's.

    python benchmarks/run_grid.py [--seeds 4] [--epochs 3] [--workers 1,2,4]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def timed_grid(executor: str, seeds: int, epochs: int, runs_root: str, workers: int = 0):
    from fgvc_lib.papers import synthetic_dataset
    from fgvc_lib.study import Study

    os.environ["FGVC_RUNS_DIR"] = os.path.join(runs_root, f"{executor}-{workers}")
    study = Study(synthetic_dataset.STUDY, profile="cpu", seeds=seeds, epochs=epochs, executor=executor,
                  workers=workers)
    started = time.perf_counter()
    study.run()
    seconds = time.perf_counter() - started
    runs = sum(len(seeds) for per_variant in study.runs.values() for seeds in per_variant.values())
    return seconds, [run.record.accuracy for run in study.runs_of("baseline")], runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", default="0", help="pool sizes to time, comma-separated (0: the default)")
    args = parser.parse_args()
    from fgvc_lib.papers import synthetic_dataset
    from fgvc_lib.study import Study
    from fgvc_lib.study.executors import cpu_cores, cuda_devices

    sizes = [int(w) for w in args.workers.split(",") if w.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FGVC_RESULTS_DIR"] = os.path.join(tmp, "results")
        warm = Study(synthetic_dataset.STUDY, profile="cpu", seeds=1, epochs=args.epochs)
        warm.data()
        warm.backbone_spec.build()  # the one-off pretraining (cached), outside the timings
        sequential, seq_acc, runs = timed_grid("inline", args.seeds, args.epochs, tmp)
        pools = {w: timed_grid("local", args.seeds, args.epochs, tmp, w) for w in sizes}
    gpus = cuda_devices()
    print(f"cores: {cpu_cores()}, GPUs: {gpus}, seeds: {args.seeds}, runs: {runs} (notebook 00's plan, recipe trials "
          f"aside), epochs: {args.epochs}")
    print(f"sequential: {sequential:.1f} s ({3600 * runs / sequential:.0f} runs/hour), "
          f"accuracies {[round(a, 2) for a in seq_acc]}")
    for workers, (seconds, accuracies, _) in pools.items():
        shown = f"pool of {workers or 'default'}" + (f" ({workers / gpus:g} runs per GPU)" if gpus and workers else "")
        print(f"{shown}: {seconds:.1f} s ({3600 * runs / seconds:.0f} runs/hour), accuracies "
              f"{[round(a, 2) for a in accuracies]}, same as sequential: {accuracies == seq_acc}")
    print(f"speedup: {sequential / min(seconds for seconds, _, _ in pools.values()):.2f}")


if __name__ == "__main__":
    main()
