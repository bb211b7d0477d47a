#!/usr/bin/env bash
# On a lent NVIDIA machine: tune ResNet-50 and MobileNetV2 (batch 1) for CUDA in parallel
# workers, export the records, and benchmark both models against PyTorch CUDA graphs without
# and with those records. Wheels for xdsl/pyopencl/pycuda/... are carried in ./.whl (see
# run_h100.sh). Results land in $OUT.
#   scripts/gpu/tune_and_bench.sh [trials] [jobs]
set -u -o pipefail
TRIALS=${1:-16}
JOBS=${2:-12}
TARGET=${TARGET:-cuda}  # cuda | opencl (NVIDIA's OpenCL driver through a private ICD file)
ICD_DIR=$(mktemp -d)
echo "${NVIDIA_OPENCL:-/usr/local/nvidia/lib64/libnvidia-opencl.so.1}" > "$ICD_DIR/nvidia.icd"
export OCL_ICD_VENDORS="$ICD_DIR"
OUT=${OUT:-/tmp/visc-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
echo "== $GPU"
timeout 330 python3 scripts/gpu/tune_models.py --target "$TARGET" --trials "$TRIALS" --jobs "$JOBS" --out /tmp/tune \
  --export "$OUT/${TARGET}_records.json" 2>&1 | grep -v "Warning\|warn(" | tee "$OUT/tune.log" | tail -70
mkdir -p /tmp/none
if [ "${SKIP_DEFAULT:-0}" = 0 ]; then echo "== benchmark: default schedules (no records)"
VISC_SHIPPED_RECORDS=/tmp/none timeout 120 python3 benchmarks/gpu_vs_torch.py --models resnet50,mobilenet_v2 \
  --targets ${BENCH_TARGETS:-cuda} --repeat 30 --out "$OUT/gvt_default.json" 2>&1 | grep -v "Warning\|torch.onnx.export" | tail -8; fi
echo "== benchmark: with the tuned records (and those shipped in visc/tuner/shipped)"
cp visc/tuner/shipped/*.json "$OUT/" 2> /dev/null
VISC_SHIPPED_RECORDS=$OUT timeout 200 python3 benchmarks/gpu_vs_torch.py --models resnet50,mobilenet_v2 \
  --targets ${BENCH_TARGETS:-cuda} --repeat 30 --out "$OUT/gvt_tuned.json" 2>&1 | grep -v "Warning\|torch.onnx.export" | tail -16
