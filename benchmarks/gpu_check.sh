#!/usr/bin/env bash
# The paper profile on a GPU in one command: every notebook 01..06 in the paper profile, end to end, then the
# training throughput against the compute limit (benchmarks/gpu_throughput.py).
#
# The notebooks read a generated CUB-200-2011-layout folder (benchmarks/cub_layout.py; 10 classes x 8 train /
# 4 test JPEGs of about 500 x 375 px) and ImageNet-format weight files with random values in a temporary
# TORCH_HOME (tests/paper_fixtures.py), train 1 epoch on one seed, and run concurrently as far as the GPU's free
# memory allows (NB_GIB per notebook). Every proxy points at a closed port: a download fails at once. Notebooks
# run through benchmarks/run_notebook.py: with papermill when papermill and ipykernel are importable, else
# their code cells in one process (no kernel needed). Prints each notebook's exit status, seconds and the
# device its runs trained on (from their checkpoints), then the throughput lines; exit status 0 when
# everything passed. Sized to finish within 10 minutes on one H200 (NB_TIMEOUT 330 s + TP_TIMEOUT 240 s at
# worst with every notebook at once).
#
# Without a GPU it runs the same on the CPU, slower and smaller (3 classes x 4 / 2 images, 64 px, batch 4,
# one notebook at a time; the throughput's small CPU version) and says so: a dry check of the plumbing.
#
#   bash benchmarks/gpu_check.sh
#   NOTEBOOKS="01_cra_cnn 05" bash benchmarks/gpu_check.sh          # a subset (names or number prefixes)
#
# Environment (all optional):
#   OUT            folder for the logs (default: a new temporary folder); WORK: data, weights, runs (temporary)
#   PYTHON         interpreter (python3)               RUNNER      auto | plain | papermill (auto)
#   NOTEBOOKS      which notebooks (01..06)            PARALLEL    notebooks at once (from the free GPU memory)
#   NB_GIB         GPU memory per notebook (16)        NB_TIMEOUT  seconds per notebook (CUDA 330, CPU 3600)
#   CLASSES TRAIN TEST  the data (CUDA 10 8 4, CPU 3 4 2)
#   IMAGE_SIZE     input side (CUDA: the paper's 448; CPU 64)   BATCH  batch size (CUDA 8, CPU 4)
#   LOADER_WORKERS loader workers per run (CUDA: the cores shared among the notebooks at once; CPU: automatic)
#   SKIP_TP=1      skip the throughput                 TP_ARGS     options of gpu_throughput.py; TP_TIMEOUT (240)
#   WHEELS         a folder of pure-Python wheels to install first (e.g. grad-cam, ttach) where they are missing
#   KEEP_WORK=1    keep the temporary WORK (runs, results, data) afterwards (a WORK you give is always kept)
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
OUT_DIR=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/fgvc-gpu-check-XXXXXX")}
if [ -z "${WORK:-}" ]; then WORK=$(mktemp -d "${TMPDIR:-/tmp}/fgvc-gpu-check-work-XXXXXX"); MADE_WORK=1; fi
mkdir -p "$OUT_DIR" "$WORK"
LOG="$OUT_DIR/check.log"
STARTED=$(date +%s)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg

say() { echo "$*" | tee -a "$LOG"; }

# ---------------------------------------------------------------- the machine
if [ -n "${WHEELS:-}" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --target "$WORK/site" "$WHEELS"/*.whl >>"$LOG" 2>&1 \
    && export PYTHONPATH="$PYTHONPATH:$WORK/site"
fi
CUDA=0 FREE_GIB=0 GPU_NAME=none
read -r CUDA FREE_GIB GPU_NAME < <("$PY" - <<'EOF'
import torch
if torch.cuda.is_available():
    free, _ = torch.cuda.mem_get_info()
    print(1, free // 2**30, torch.cuda.get_device_name().replace(" ", "_"))
else:
    print(0, 0, "none")
EOF
)
if [ "${CUDA:-0}" != 1 ]; then CUDA=0; fi
CORES=$(nproc 2>/dev/null || echo 2)
if [ "$CUDA" = 1 ]; then
  say "GPU check on ${GPU_NAME//_/ } (${FREE_GIB} GiB free), $CORES CPU cores; logs in $OUT_DIR"
  : "${CLASSES:=10}" "${TRAIN:=8}" "${TEST:=4}" "${BATCH:=8}" "${IMAGE_SIZE:=}" "${NB_TIMEOUT:=330}"
else
  say "no GPU: the check runs on the CPU, slower and smaller (a dry check, not the GPU figures); $CORES CPU cores; logs in $OUT_DIR"
  : "${CLASSES:=3}" "${TRAIN:=4}" "${TEST:=2}" "${BATCH:=4}" "${IMAGE_SIZE:=64}" "${NB_TIMEOUT:=3600}"
fi
"$PY" -c "import sys, torch, torchvision; print('python', sys.version.split()[0], 'torch', torch.__version__, 'torchvision', torchvision.__version__)" | tee -a "$LOG"
missing=$("$PY" - <<'EOF'
import importlib.util
print(" ".join(m for m in ("pytorch_grad_cam", "ttach", "cv2", "submitit", "papermill", "ipykernel")
               if importlib.util.find_spec(m) is None))
EOF
)
[ -z "$missing" ] || say "not installed here: $missing (papermill/ipykernel/submitit are optional; the notebooks' CAM cells need pytorch_grad_cam, ttach, cv2)"

RUNNER=${RUNNER:-auto}
if [ "$RUNNER" = auto ]; then
  if "$PY" -c "import papermill, ipykernel" 2>/dev/null; then RUNNER=papermill; else RUNNER=plain; fi
fi

# ---------------------------------------------------------------- which notebooks
ALL=$(cd "$ROOT/notebooks" && ls [0-9][0-9]_*.ipynb | sed 's/\.ipynb$//' | grep -v '^00_')
SELECTED=()
for item in ${NOTEBOOKS:-$ALL}; do
  match=$(echo "$ALL" | grep -E "^(${item}|${item}_.*)$" | head -n 1)
  if [ -z "$match" ]; then echo "unknown notebook '$item'; available: $(echo $ALL)" >&2; exit 2; fi
  SELECTED+=("$match")
done
if [ -z "${PARALLEL:-}" ]; then
  if [ "$CUDA" = 1 ]; then PARALLEL=$(( FREE_GIB / ${NB_GIB:-16} )); else PARALLEL=1; fi
  [ "$PARALLEL" -ge 1 ] || PARALLEL=1
  [ "$PARALLEL" -le "${#SELECTED[@]}" ] || PARALLEL=${#SELECTED[@]}
fi
if [ -z "${LOADER_WORKERS:-}" ] && [ "$CUDA" = 1 ]; then
  LOADER_WORKERS=$(( CORES / PARALLEL - 1 )); [ "$LOADER_WORKERS" -ge 1 ] || LOADER_WORKERS=1
fi
THREADS=$(( CORES / PARALLEL )); [ "$THREADS" -ge 1 ] || THREADS=1
say "notebooks: ${SELECTED[*]}; $PARALLEL at once, runner $RUNNER; data $CLASSES classes x $TRAIN/$TEST, batch $BATCH, image size ${IMAGE_SIZE:-448 (the profile default)}, 1 epoch"

# ---------------------------------------------------------------- data and weights
t=$(date +%s)
"$PY" "$ROOT/benchmarks/cub_layout.py" "$WORK/data" --classes "$CLASSES" --train "$TRAIN" --test "$TEST" >>"$LOG" 2>&1 \
  || { say "could not write the CUB-layout folder (see $LOG)"; exit 1; }
"$PY" - "$ROOT" "$WORK/torch_home" >>"$LOG" 2>&1 <<'EOF' || { say "could not write the weight files (see $LOG)"; exit 1; }
import sys
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[1]) / "tests"))
from paper_fixtures import write_imagenet_file
from fgvc_lib.profiles import get_profile
batch_norm = get_profile("paper").batch_norm
for name in ("vgg16", "vgg19", "resnet50"):   # the notebooks' paper-profile backbones (01, 02: ResNet-50; 04: VGG-19)
    print(write_imagenet_file(Path(sys.argv[2]), name, batch_norm=batch_norm and name.startswith("vgg")))
EOF
say "data and weights: $(( $(date +%s) - t )) s"

# ---------------------------------------------------------------- the notebooks
PARAMS=(profile=paper dataset=cub "data_root=$WORK/data" epochs=1 "batch_size=$BATCH" 'seeds="0"'
        ablation_seeds=1 ablation_epochs=1)
[ -z "$IMAGE_SIZE" ] || PARAMS+=("image_size=$IMAGE_SIZE" "patch_size=$(( IMAGE_SIZE / 2 ))")
[ -z "${LOADER_WORKERS:-}" ] || PARAMS+=("loader_workers=$LOADER_WORKERS")
TIMEOUT=(); command -v timeout >/dev/null && TIMEOUT=(timeout "$NB_TIMEOUT")

run_notebook() {   # $1: notebook name; writes $OUT_DIR/nb_$1.log and $WORK/status/$1
  local nb=$1 start rc devices
  start=$(date +%s)
  (
    export FGVC_PROFILE=paper FGVC_RESULTS_DIR="$WORK/results" FGVC_RUNS_DIR="$WORK/runs" \
           FGVC_CACHE_DIR="$WORK/cache/$nb" TORCH_HOME="$WORK/torch_home" OMP_NUM_THREADS="${OMP_NUM_THREADS:-$THREADS}"
    for var in HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy; do export "$var=http://127.0.0.1:9"; done
    unset NO_PROXY no_proxy
    engine=(); [ "$RUNNER" != papermill ] || engine=(--papermill "$OUT_DIR/$nb.ipynb")
    ${TIMEOUT[@]+"${TIMEOUT[@]}"} "$PY" "$ROOT/benchmarks/run_notebook.py" ${engine[@]+"${engine[@]}"} "$ROOT/notebooks/$nb.ipynb" "${PARAMS[@]}"
  ) >"$OUT_DIR/nb_$nb.log" 2>&1
  rc=$?
  devices=$("$PY" - "$WORK/runs/$nb" 2>/dev/null <<'EOF'
import sys
from collections import Counter
from pathlib import Path
import torch
count = Counter()
for path in Path(sys.argv[1]).rglob("last.pt"):
    seen = set()
    torch.load(path, map_location=lambda storage, location: seen.add(location.split(":")[0]) or storage,
               weights_only=False)
    count["+".join(sorted(seen))] += 1
print(", ".join(f"{n} run(s) on {d}" for d, n in sorted(count.items())) or "no run checkpoint")
EOF
)
  echo "$nb|$rc|$(( $(date +%s) - start ))|${devices:-?}" >"$WORK/status/$nb"
  echo "  $nb: exit $rc in $(( $(date +%s) - start )) s (${devices:-?})"
}

mkdir -p "$WORK/status"
SAMPLER=
if [ "$CUDA" = 1 ] && command -v nvidia-smi >/dev/null; then   # the GPU memory in use, every 2 s, for its peak
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 2000 >"$WORK/gpu_memory.txt" 2>/dev/null &
  SAMPLER=$!
fi
t=$(date +%s)
running=0 PIDS=()
for nb in "${SELECTED[@]}"; do
  if [ "$running" -ge "$PARALLEL" ]; then wait -n; running=$(( running - 1 )); fi   # (the sampler never ends)
  run_notebook "$nb" | tee -a "$LOG" &
  PIDS+=($!)
  running=$(( running + 1 ))
done
wait "${PIDS[@]}"
NB_SECONDS=$(( $(date +%s) - t ))
PEAK=
if [ -n "$SAMPLER" ]; then
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null
  PEAK=$(sort -n "$WORK/gpu_memory.txt" | tail -n 1)
fi

# ---------------------------------------------------------------- the throughput
TP_RC=skipped
if [ -z "${SKIP_TP:-}" ]; then
  t=$(date +%s)
  TP_TIMER=(); command -v timeout >/dev/null && TP_TIMER=(timeout "${TP_TIMEOUT:-240}")
  # shellcheck disable=SC2086  # TP_ARGS: several options
  ${TP_TIMER[@]+"${TP_TIMER[@]}"} "$PY" "$ROOT/benchmarks/gpu_throughput.py" --data "$WORK/throughput-data" ${TP_ARGS:-} \
    >"$OUT_DIR/throughput.log" 2>&1
  TP_RC=$?
  TP_SECONDS=$(( $(date +%s) - t ))
fi

# ---------------------------------------------------------------- the summary
failed=0
SUMMARY="$OUT_DIR/summary.txt"
{
  echo
  echo "== notebooks (paper profile, $([ "$CUDA" = 1 ] && echo "CUDA, ${GPU_NAME//_/ }" || echo "CPU: no GPU"), $PARALLEL at once, runner $RUNNER): $NB_SECONDS s${PEAK:+, peak GPU memory $PEAK MiB}"
  printf '%-26s %5s %8s  %s\n' notebook exit seconds "runs (device, from their checkpoints)"
} >"$SUMMARY"
for nb in "${SELECTED[@]}"; do
  name=$nb rc=missing seconds=? devices=?
  [ ! -f "$WORK/status/$nb" ] || IFS='|' read -r name rc seconds devices <"$WORK/status/$nb"
  printf '%-26s %5s %8s  %s\n' "$name" "$rc" "$seconds" "$devices" >>"$SUMMARY"
  [ "$rc" = 0 ] || failed=1
done
if [ "$TP_RC" != skipped ]; then
  { echo; echo "== throughput (benchmarks/gpu_throughput.py, exit $TP_RC, $TP_SECONDS s)"
    grep -v '^[[:space:]]*$' "$OUT_DIR/throughput.log" | tail -n 8; } >>"$SUMMARY"
  [ "$TP_RC" = 0 ] || failed=1
fi
{ echo; echo "total $(( $(date +%s) - STARTED )) s; logs in $OUT_DIR (nb_<notebook>.log, throughput.log, check.log)"; } >>"$SUMMARY"
cat "$SUMMARY" | tee -a "$LOG"
[ -n "${KEEP_WORK:-}" ] || [ -z "${MADE_WORK:-}" ] || rm -rf "$WORK"   # a WORK given by the caller stays
exit "$failed"
