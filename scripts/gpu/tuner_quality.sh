#!/usr/bin/env bash
# On a lent NVIDIA machine: the tuner-quality benchmark on CUDA (TPE against random search on
# eight ResNet-50 / MobileNetV2 convs), one process per workload, timed runs taking turns.
# The studies live in build/tq (kept between calls), so a call cut off by its time limit
# resumes where it stopped (the studies are also saved as $OUT/tq.tgz: unpack and carry them back as build/tq
# when the machine was given back between calls). Wheels are carried in ./.whl. Results land in $OUT.
#   [REPEAT=10] [MIN_MS=0] [CONFIRM=2] [REFINE=2] [FIRST_SEED=0] [RANDOM_TRIALS=3*trials]
#   [TRANSFER=0 TRANSFER_FROM=dir-of-earlier-records] [BATCH=1] scripts/gpu/tuner_quality.sh [trials] [seeds] [seconds]
set -u -o pipefail
TRIALS=${1:-32}
SEEDS=${2:-3}
FIRST=${FIRST_SEED:-0}
LIMIT=${3:-540}
OUT=${OUT:-/tmp/visc-out}
mkdir -p "$OUT" build/tq
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1
timeout "$LIMIT" python3 benchmarks/tuner_quality.py --target cuda --jobs 8 --trials "$TRIALS" --random-trials "${RANDOM_TRIALS:-$((3 * TRIALS))}" --seeds "$SEEDS" --first-seed "$FIRST" \
  --repeat "${REPEAT:-10}" --min-repeat-ms "${MIN_MS:-0}" --confirm "${CONFIRM:-2}" --refine "${REFINE:-2}" \
  --batch "${BATCH:-1}" --transfer "${TRANSFER:-0}" ${TRANSFER_FROM:+--transfer-from "$TRANSFER_FROM"} --records-dir build/tq --out "$OUT/tuner_quality_cuda.json" 2>&1 \
  | grep -v "Warning\|warn(" > "$OUT/tuner_quality_cuda.log"
echo "exit ${PIPESTATUS[0]}"
pkill -f "[b]enchmarks/tuner_quality.py"  # the workers of a run cut off by the time limit
tar czf "$OUT/tq.tgz" build/tq
tail -16 "$OUT/tuner_quality_cuda.log"
