#!/usr/bin/env bash
# On a lent NVIDIA machine: `visc records validate` of the shipped H100 records (CUDA and
# NVIDIA OpenCL) inside the torchvision ResNet-50 and MobileNetV2 they were tuned on (batch 1):
# per-task verdicts from the profile, and the whole model's wall time with and without the
# records. Writes the kept records of each target as $OUT/<target>_kept.json and validates
# those alone again (their whole-model wall time against the heuristic's).
#   scripts/gpu/validate_shipped.sh [repeat]
set -u -o pipefail
REPEAT=${1:-30}
OUT=${OUT:-/tmp/visc-out}
ICD_DIR=$(mktemp -d)
echo "${NVIDIA_OPENCL:-/usr/local/nvidia/lib64/libnvidia-opencl.so.1}" > "$ICD_DIR/nvidia.icd"
export OCL_ICD_VENDORS="$ICD_DIR"
mkdir -p "$OUT" /tmp/models
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
python3 -c "
import sys; sys.path[:0] = ['scripts/gpu', 'benchmarks']
from tune_models import export_models
print(export_models(['resnet50', 'mobilenet_v2'], 1, '/tmp/models'))" 2>&1 | grep -v "Warning\|warn("
for target in cuda opencl; do
  records=shipped
  for model in resnet50 mobilenet_v2; do
    echo "== $target $model ($records)"
    python3 -m visc.tools.visc_cli records validate "/tmp/models/${model}_b1.onnx" --target "$target" --records "$records" \
      --repeat "$REPEAT" --out "$OUT/${target}_kept_${model}.json" 2>&1 | grep -v "Warning\|warn(\|profiling with" | tail -40
    records="$OUT/${target}_kept_${model}.json"
  done
  cp "$records" "$OUT/${target}_kept.json"
  for model in resnet50 mobilenet_v2; do  # the kept records alone, against the heuristic
    echo "== $target $model (kept only)"
    python3 -m visc.tools.visc_cli records validate "/tmp/models/${model}_b1.onnx" --target "$target" \
      --records "$OUT/${target}_kept.json" --repeat "$REPEAT" 2>&1 | grep "beat the heuristic\|whole model"
  done
done
