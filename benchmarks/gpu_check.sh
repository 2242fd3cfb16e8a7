#!/usr/bin/env bash
# The CUDA check of the data path, in a few minutes on one GPU (runs anywhere; the figures mean something on CUDA):
#   1. the device-decoding tests (their cuda cases) and the learner on CUDA;
#   2. ResNet-50 at 224 px, bf16, channels-last, BYOL from a folder of photo-sized
#      JPEGs (built from scikit-image's photographs, nothing downloaded), augmentation
#      included, once with the workers decoding and once with --gpu-decode;
#   3. the bare learner step (bench_step.py) eager and with the learner's networks
#      compiled (COMPILE_MODE, default max-autotune-no-cudagraphs), and the colour part
#      of each view alone (bench_photometric.py: ours, kornia, a per-image torchvision
#      loop): the photometric share of the step. SKIP_STEP=1 leaves part 3 out.
# Prints images/s (steps after the warm-up) and the share of the loop spent waiting
# for data, and writes them to $OUT/gpu_check.json (or ./gpu_check.json).
# Needs the test extra (pip install -e ".[test]": pytest, scikit-image).
# FILES sets the epoch's length. Before the loader's order ran from one epoch into the
# next, 1,024 files (4 batches of 256) kept the H200 waiting 75 % of the time; any
# number of files should keep it fed now, which a run with FILES=1024 would confirm.
#
#   bash benchmarks/gpu_check.sh              # batch 256, 30 steps each, 8,192 files
#   STEPS=60 BATCH=192 bash benchmarks/gpu_check.sh
#   MODEL=resnet18 SIZE=64 STEPS=10 BATCH=4 FILES=16 bash benchmarks/gpu_check.sh   # smoke run, any machine
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
STEPS=${STEPS:-30}
BATCH=${BATCH:-256}
FILES=${FILES:-8192}
MODEL=${MODEL:-resnet50}
SIZE=${SIZE:-224}
COMPILE_MODE=${COMPILE_MODE:-max-autotune-no-cudagraphs}
WORK=$(mktemp -d)
RESULTS=${OUT:-.}/gpu_check.json
trap 'rm -rf "$WORK"' EXIT

if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; fi
echo "== cuda tests (skipped without a GPU)"
PYTHONPATH=$PWD $PY -m pytest tests/test_gpu_decode.py tests/test_byol.py::test_runs_on_cuda -q -W ignore::DeprecationWarning

echo "== building $FILES JPEGs"
PYTHONPATH=$PWD $PY - "$WORK/photos" "$FILES" <<'PYEOF'
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from bench_data import build_folder
build_folder(Path(sys.argv[1]), int(sys.argv[2]))
PYEOF

run() {  # name, extra flags...; a failed run is reported and the other still runs
  local name=$1; shift
  echo "== $MODEL, $SIZE px, batch $BATCH, bf16, channels-last: $name"
  if PYTHONPATH=$PWD $PY -m byol_pytorch train --data "$WORK/photos" --model "$MODEL" --image-size "$SIZE" \
    --batch-size "$BATCH" --num-train-steps "$STEPS" --mixed-precision bf16 --channels-last --no-final-eval \
    --no-progress --log-every 5 --checkpoint-every 100000 --out "$WORK/run_$name" "$@" >"$WORK/$name.log" 2>&1; then
    tail -n 2 "$WORK/$name.log"
  else
    echo "the $name run failed:"; tail -n 20 "$WORK/$name.log"
  fi
  if [ -n "${OUT:-}" ] && [ -f "$WORK/run_$name/metrics.jsonl" ]; then cp "$WORK/run_$name/metrics.jsonl" "$OUT/metrics_$name.jsonl"; fi
}
run workers
run gpu_decode --gpu-decode

if [ -z "${SKIP_STEP:-}" ]; then
  echo "== the bare step, eager and networks compiled ($COMPILE_MODE), and the colour part alone"
  # Each reports its own failure and the other still runs; compile time is inside the warm-up steps.
  PYTHONPATH=$PWD $PY benchmarks/bench_step.py --model "$MODEL" --image-size "$SIZE" --batch-size "$BATCH" \
    --configs default,compile_networks --compile-mode "$COMPILE_MODE" --steps 20 --warmup 5 \
    --out "$WORK/step.json" || echo "the step benchmark failed"
  PYTHONPATH=$PWD $PY benchmarks/bench_photometric.py --image-size "$SIZE" --batch-size "$BATCH" --repeats 10 \
    --out "$WORK/photometric.json" || echo "the photometric benchmark failed"
  if [ -n "${OUT:-}" ]; then cp "$WORK"/step.json "$WORK"/photometric.json "$OUT"/ 2>/dev/null || true; fi
fi

PYTHONPATH=$PWD $PY - "$WORK" "$RESULTS" "$BATCH" <<'PYEOF'
import json, sys
from pathlib import Path
work, out, batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
import torch
result = {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "batch": batch}
for name in ("workers", "gpu_decode"):
    summary_path = work / f"run_{name}" / "summary.json"
    if not summary_path.exists():
        result[name] = None
        print(f"{name}: the run did not finish")
        continue
    records = [json.loads(line) for line in (work / f"run_{name}" / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in records if "loss" in r]
    steady = losses[1:] or losses  # the first interval holds cuDNN's warm-up
    seconds = sum(5 * batch / r["images_per_second"] for r in steady)
    summary = json.loads(summary_path.read_text())
    result[name] = {"images_per_second": round(5 * batch * len(steady) / seconds, 1),
                    "data_wait_fraction": round(sum(r["data_wait_s"] for r in steady) / seconds, 4),
                    "whole_run_images_per_second": summary["images_per_second"]}
    print(f"{name}: {result[name]['images_per_second']} images/s after warm-up, "
          f"{100 * result[name]['data_wait_fraction']:.1f} % of the loop waiting for data")
step_path, photometric_path = work / "step.json", work / "photometric.json"
if step_path.exists():
    steps = {r["config"]: r for r in json.loads(step_path.read_text())["results"]}
    result["step"] = {name: {"step_ms_median": r["step_ms_median"], "images_per_second": r.get("images_per_s"),
                             "breakdown_ms": r.get("breakdown_ms")} for name, r in steps.items()}
    for name, r in result["step"].items():
        print(f"bare step, {name}: {r['step_ms_median']:.1f} ms, {r['images_per_second']} images/s")
    if photometric_path.exists() and "default" in steps:
        rows = json.loads(photometric_path.read_text())["rows"]
        # The learner runs the colour part in fp32 (autocast off): both views' fp32 rows, over the eager step.
        ours = sum(r["ms_median"] for r in rows if r["pipeline"] == "ours" and r["precision"] == "fp32")
        result["photometric_ms_both_views"] = ours
        result["photometric_share_of_step"] = round(ours / steps["default"]["step_ms_median"], 4)
        print(f"photometric part: {ours:.1f} ms for both views, "
              f"{100 * result['photometric_share_of_step']:.1f} % of the eager step (goal: 5 % or less)")
out.write_text(json.dumps(result, indent=2))
print(f"written to {out}")
PYEOF
