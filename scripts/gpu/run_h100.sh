#!/usr/bin/env bash
# visc on an NVIDIA GPU machine (written for a lent H100): installs what is missing from
# wheels carried in ./.whl (no network needed), points an OpenCL ICD at NVIDIA's driver, and
# runs the CUDA test subset, the same light-model and node tests on NVIDIA OpenCL, and the
# GPU benchmark. Run from anywhere; everything it prints is also saved under $OUT.
#
#   scripts/gpu/run_h100.sh [all|tests|bench|errors|pipeline]   (default: all)
#
# pipeline: the dataflow runtime on the GPU machine: benchmarks/pipeline.py with a CUDA stage
# and a CPU stage, then tests/test_pipeline.py (cuda, cuda+cpu, cuda+opencl cuts, bitwise),
# tests/test_runtime_layer.py and the CUDA executor tests (PIPE_TESTS picks others;
# PIPE_TEST_TIMEOUT bounds them, and a test running past PIPE_TEST_STACKS s prints its stacks;
# PIPE_BENCH=0 skips the benchmark).
#
# Expects: NVIDIA driver, CUDA toolkit (ptxas, libdevice), python3 with PyTorch, torchvision,
# onnx, onnxruntime, numpy, pytest. Carried in .whl/: pycuda (a wheel, or its sdist, built
# here once: the wheel is left in $OUT for next time), xdsl, immutabledict, ordered-set,
# pyopencl, pytools, platformdirs, siphash24, mako; cuda-python if the image lacks it.
set -u -o pipefail

PHASE=${1:-all}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
OUT=${OUT:-$REPO/out/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
SITE=${VISC_SITE:-/tmp/visc-site}
JOBS=${VISC_TEST_JOBS:-8}
export PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/run_h100.log") 2>&1

echo "== visc GPU run: $(date -u +%FT%TZ) on $(hostname), phase $PHASE, results in $OUT"

# -- 1. Python packages from .whl/ -------------------------------------------------------------
mkdir -p "$SITE"
if compgen -G ".whl/*.whl" > /dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" .whl/*.whl \
    || { echo "installing the wheels in .whl/ failed"; exit 1; }
fi
# packages carried as tar.xz of their installed folders (llvmlite's wheel, stripped and
# recompressed, is 37 MB instead of 60 MB: the carried tree is limited to 64 MiB)
for t in .whl/*.tar.xz; do [ -e "$t" ] && tar xJf "$t" -C "$SITE"; done
export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
if ! $PY -c "import pycuda" 2> /dev/null; then
  SDIST=$(ls .whl/pycuda-*.tar.gz 2> /dev/null | head -n 1)
  if [ -z "$SDIST" ]; then
    echo "pycuda is missing: put a pycuda wheel (or its sdist) into .whl/"; exit 1
  fi
  CUDA_ROOT=${CUDA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")")}
  echo "== building pycuda from $SDIST against $CUDA_ROOT (about two minutes)"
  BUILD=$(mktemp -d)
  tar xzf "$SDIST" -C "$BUILD"
  (cd "$BUILD"/pycuda-* && $PY configure.py --cuda-root="$CUDA_ROOT" > /dev/null \
    && $PY -m pip wheel -q --no-deps --no-build-isolation --no-index . -w "$OUT") || { echo "pycuda build failed"; exit 1; }
  $PY -m pip install -q --no-index --no-deps --upgrade --target "$SITE" "$OUT"/pycuda-*.whl || exit 1
  echo "== pycuda wheel kept at $(ls "$OUT"/pycuda-*.whl): copy it into .whl/ to skip the build next time"
fi

# -- 2. NVIDIA's OpenCL driver through a private ICD directory -----------------------------------
NVIDIA_OPENCL=${NVIDIA_OPENCL:-/usr/local/nvidia/lib64/libnvidia-opencl.so.1}
ICD_DIR=$(mktemp -d)
echo "$NVIDIA_OPENCL" > "$ICD_DIR/nvidia.icd"
export OCL_ICD_VENDORS="$ICD_DIR"

# -- 3. what is here -------------------------------------------------------------------------
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
command -v ptxas > /dev/null && ptxas --version | tail -n 2
$PY - << 'PYEOF'
import importlib
for name in ("numpy", "onnx", "onnxruntime", "torch", "torchvision", "xdsl", "llvmlite", "pyopencl", "pycuda"):
    try:
        mod = importlib.import_module(name)
        print(f"{name:12s} {getattr(mod, '__version__', getattr(mod, 'VERSION', '?'))}")
    except Exception as e:  # noqa: BLE001
        print(f"{name:12s} MISSING ({e})")
try:
    from cuda.bindings import driver
    print("cuda-python  cuda.bindings", getattr(__import__("cuda.bindings", fromlist=["x"]), "__version__", "?"))
except ImportError as e:
    print("cuda-python  MISSING", e)
import pycuda.driver as drv
drv.init()
dev = drv.Device(0)
print(f"CUDA device  {dev.name()} sm_{dev.compute_capability()[0]}{dev.compute_capability()[1]}, driver {drv.get_driver_version()}")
import pyopencl as cl
for p in cl.get_platforms():
    print("OpenCL       ", p.name, [d.name for d in p.get_devices()])
from visc.backends.ptx import find_libdevice
print("libdevice   ", find_libdevice())
PYEOF

STATUS=0
XDIST=""
$PY -c "import xdist" 2> /dev/null && XDIST="-n $JOBS"

# -- 4. tests ------------------------------------------------------------------------------------
if [ "$PHASE" = all ] || [ "$PHASE" = tests ]; then
  echo "== CUDA: light models, ONNX node tests, executor (tests/test_cuda_executor.py)"
  $PY -m pytest -q -p no:cacheprovider $XDIST -rs tests/test_cuda_executor.py \
    --junitxml="$OUT/cuda_tests.xml" 2>&1 | tail -n 25 || STATUS=1
  echo "== NVIDIA OpenCL: light models and ONNX node tests (same IR, the OpenCL interface)"
  $PY -m pytest -q -p no:cacheprovider $XDIST -rs tests/test_light_models.py tests/test_onnx_node_cases.py \
    --junitxml="$OUT/opencl_tests.xml" 2>&1 | tail -n 25 || STATUS=1
  echo "== light models: max relative error against onnxruntime, CUDA and NVIDIA OpenCL"
  $PY scripts/gpu/light_errors.py --out "$OUT/light_errors.json" 2>&1 | grep -v "W:onnxruntime" || STATUS=1
  echo "== PTX generation and ptxas (tests/test_ptx_backend.py)"
  $PY -m pytest -q -p no:cacheprovider $XDIST tests/test_ptx_backend.py 2>&1 | tail -n 5 || STATUS=1
fi

if [ "$PHASE" = errors ]; then
  $PY scripts/gpu/light_errors.py --out "$OUT/light_errors.json" 2>&1 | grep -v "W:onnxruntime" || STATUS=1
fi

if [ "$PHASE" = pipeline ] && [ "${PIPE_BENCH:-1}" != 0 ]; then
  echo "== benchmarks/pipeline.py: a CNN on CUDA with its tail on the CPU"
  $PY benchmarks/pipeline.py --devices cuda,cpu --threads 0 --model ${PIPE_MODEL:-resnet50} \
    --sections ${PIPE_SECTIONS:-overhead,balanced,ort} --frames ${PIPE_FRAMES:-200} \
    --out "$OUT/pipeline_gpu.json" 2>&1 | grep -v "W:onnxruntime" || STATUS=1
fi
if [ "$PHASE" = pipeline ]; then
  echo "== dataflow runtime: pipeline, runtime-layer and CUDA executor tests"
  timeout ${PIPE_TEST_TIMEOUT:-600} $PY -m pytest -q -p no:cacheprovider $XDIST -rs --durations=20 \
    -o faulthandler_timeout=${PIPE_TEST_STACKS:-240} \
    ${PIPE_TESTS:-tests/test_pipeline.py tests/test_runtime_layer.py tests/test_cuda_executor.py} \
    --junitxml="$OUT/pipeline_tests.xml" 2>&1 | grep -v "PytestBenchmarkWarning\|warner(" | tail -n 60 || STATUS=1
fi

# -- 5. benchmark --------------------------------------------------------------------------------
if [ "$PHASE" = all ] || [ "$PHASE" = bench ]; then
  echo "== benchmark: visc CUDA / OpenCL against PyTorch eager and CUDA graphs"
  $PY benchmarks/gpu_vs_torch.py --out "$OUT/gpu_vs_torch.json" ${VISC_BENCH_ARGS:-} || STATUS=1
fi

echo "== done (status $STATUS); results in $OUT"
exit $STATUS
