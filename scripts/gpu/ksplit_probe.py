"""Probe: how fast can a hand-written CUDA C kernel run MobileNetV2's 1x1 convs (cold L2)?
Times a one-output-per-thread kernel (visc's naive schedule, written by hand) against kernels
that split the reduction across the threads of a block (partial sums added in shared memory)
and register-tiled ones, to learn which kernel family could be 3x the naive one.
python ksplit_probe.py OUT.json  (CuPy; no visc)"""
import itertools
import json
import statistics
import sys

import cupy as cp

SRC = r"""
#define STR(x) #x
#define PRAGMA_UNROLL(n) _Pragma(STR(unroll n))
extern "C" __global__ void spin(long long cycles) {
  long long t0 = clock64(); while (clock64() - t0 < cycles) {}
}
#ifdef KIND_naive
extern "C" __global__ void naive(const float* __restrict__ x, const float* __restrict__ w,
                                 const float* __restrict__ b, float* __restrict__ y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= NB * M * P) return;
  int p = i % P, m = (i / P) % M, n = i / (P * M);
  float acc = 0.f;
  #pragma unroll 1
  for (int k = 0; k < K; ++k) acc += w[m * K + k] * x[(n * K + k) * P + p];
  y[i] = acc + b[m];
}
#endif
#ifdef KIND_rk
// block: LANES pixels x R reduction slices; each thread TM output channels (strided by M/TM blocks)
extern "C" __global__ void rk(const float* __restrict__ x, const float* __restrict__ w,
                              const float* __restrict__ b, float* __restrict__ y) {
  __shared__ float part[R][TM][LANES];
  int lane = threadIdx.x % LANES, r = threadIdx.x / LANES;
  int col = blockIdx.x * LANES + lane;  // over NB * P
  int n = min(col, NB * P - 1) / P, p = min(col, NB * P - 1) % P;
  int m0 = blockIdx.y * TM;
  float acc[TM];
  #pragma unroll
  for (int i = 0; i < TM; ++i) acc[i] = 0.f;
  const int KS = (K + R - 1) / R;
  int k0 = r * KS, k1 = min(K, k0 + KS);
  PRAGMA_UNROLL(UNROLL)
  for (int k = k0; k < k1; ++k) {
    float xv = x[(n * K + k) * P + p];
    #pragma unroll
    for (int i = 0; i < TM; ++i) acc[i] += w[(m0 + i) * K + k] * xv;
  }
  #pragma unroll
  for (int i = 0; i < TM; ++i) part[r][i][lane] = acc[i];
  __syncthreads();
  for (int o = threadIdx.x; o < TM * LANES; o += LANES * R) {
    int i = o / LANES, l = o % LANES;
    float s = 0.f;
    #pragma unroll
    for (int q = 0; q < R; ++q) s += part[q][i][l];
    int c = blockIdx.x * LANES + l;
    if (c < NB * P) y[((c / P) * M + m0 + i) * P + c % P] = s + b[m0 + i];
  }
}
#endif
#ifdef KIND_tile
// register tile: TM channels x TN pixels per thread (pixels strided by the block), full K
extern "C" __global__ void tile(const float* __restrict__ x, const float* __restrict__ w,
                                const float* __restrict__ b, float* __restrict__ y) {
  int t = threadIdx.x;
  int m0 = blockIdx.y * TM;
  float acc[TM][TN];
  int cs[TN];
  #pragma unroll
  for (int j = 0; j < TN; ++j) cs[j] = min(blockIdx.x * LANES * TN + j * LANES + t, NB * P - 1);
  #pragma unroll
  for (int i = 0; i < TM; ++i)
    #pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;
  PRAGMA_UNROLL(UNROLL)
  for (int k = 0; k < K; ++k) {
    float xv[TN];
    #pragma unroll
    for (int j = 0; j < TN; ++j) xv[j] = x[((cs[j] / P) * K + k) * P + cs[j] % P];
    #pragma unroll
    for (int i = 0; i < TM; ++i) {
      float wv = w[(m0 + i) * K + k];
      #pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] += wv * xv[j];
    }
  }
  #pragma unroll
  for (int j = 0; j < TN; ++j) {
    int c = blockIdx.x * LANES * TN + j * LANES + t;
    if (c < NB * P)
      #pragma unroll
      for (int i = 0; i < TM; ++i) y[((c / P) * M + m0 + i) * P + c % P] = acc[i][j] + b[m0 + i];
  }
}
#endif
"""

CASES = {  # label -> (batch, M = out channels, K = in channels, P = pixels per image)
    "project b1": (1, 64, 384, 196),
    "project b8": (8, 64, 384, 196),
    "expand b1": (1, 384, 64, 196),
    "expand b8": (8, 384, 64, 196),
}


def probe(label: str, nb: int, m: int, k: int, p: int, flush, start, end) -> dict:
    rng = cp.random.default_rng(0)
    x = rng.standard_normal((nb, k, p), dtype=cp.float32)
    w = rng.standard_normal((m, k), dtype=cp.float32) * 0.05
    b = rng.standard_normal(m, dtype=cp.float32)
    ref = cp.einsum("mk,nkp->nmp", w, x) + b[None, :, None]
    y = cp.empty_like(ref)

    def build(name: str, **consts: int):
        defs = "".join(f"#define {key} {val}\n" for key, val in {"NB": nb, "M": m, "K": k, "P": p, **consts}.items())
        defs += f"#define KIND_{name}\n"
        mod = cp.RawModule(code=defs + SRC, options=("--std=c++11",))
        return mod.get_function(name), mod.get_function("spin")

    f, spin = build("naive")

    def timed(fn, grid, block) -> float:
        args = (x, w, b, y)
        y.fill(float("nan"))
        for _ in range(5):
            fn(grid, block, args)
        runs = []
        for _ in range(40):
            flush.fill(0)
            spin((1,), (1,), (cp.int64(600_000),))
            start.record()
            fn(grid, block, args)
            end.record()
            end.synchronize()
            runs.append(cp.cuda.get_elapsed_time(start, end) * 1e3)
        err = float(cp.abs(y - ref).max())
        if not err <= 1e-3:
            raise SystemExit(f"{label}: wrong result (max |diff| {err})")
        return statistics.median(runs)

    row: dict = {"naive": timed(f, ((nb * m * p + 255) // 256,), (256,))}
    best = []
    for lanes, r, tm, unroll in itertools.product((16, 32, 64), (1, 2, 4, 8, 16), (1, 2, 4, 8), (1, 4)):
        if lanes * r > 1024 or lanes * r < 64 or m % tm or k < r * 8:
            continue
        f, _ = build("rk", LANES=lanes, R=r, TM=tm, UNROLL=unroll)
        t = timed(f, ((nb * p + lanes - 1) // lanes, m // tm), (lanes * r,))
        best.append((t, f"rk lanes={lanes} R={r} TM={tm} unroll={unroll}"))
    for lanes, tm, tn, unroll in itertools.product((32, 64, 128), (1, 2, 4, 8), (1, 2, 4), (1, 4)):
        if m % tm:
            continue
        f, _ = build("tile", LANES=lanes, TM=tm, TN=tn, UNROLL=unroll)
        t = timed(f, ((nb * p + lanes * tn - 1) // (lanes * tn), m // tm), (lanes,))
        best.append((t, f"tile lanes={lanes} TM={tm} TN={tn} unroll={unroll}"))
    best.sort()
    row["best_rk"] = min((t, s) for t, s in best if s.startswith("rk"))
    row["best_tile"] = min((t, s) for t, s in best if s.startswith("tile"))
    row["top"] = best[:6]
    print(f"{label}: naive {row['naive']:.1f} us; best rk {row['best_rk'][0]:.1f} ({row['best_rk'][1]}), "
          f"best tile {row['best_tile'][0]:.1f} ({row['best_tile'][1]}); naive/best "
          f"{row['naive'] / best[0][0]:.2f}", flush=True)
    return row


def main() -> None:
    flush = cp.empty(64 * 2**20, dtype=cp.float32)
    start, end = cp.cuda.Event(), cp.cuda.Event()
    results = {label: probe(label, *case, flush, start, end) for label, case in CASES.items()}
    json.dump(results, open(sys.argv[1], "w"), indent=1)


if __name__ == "__main__":
    main()
