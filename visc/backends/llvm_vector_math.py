"""Inline f32 ``exp`` for the CPU's LLVM IR: LLVM has no vector math library on the host,
so ``llvm.exp`` or ``expf`` on a ``<16 x float>`` becomes 16 scalar libm calls, and a loop
calling ``expf`` is not vectorized at all. SiLU and sigmoid epilogues (EfficientNet,
MobileNetV3) then cost more than the convs they follow. Written out as plain arithmetic, the
same code serves scalars too, and LLVM's loop vectorizer widens it like any other.

The function is written out in the emitted IR: x = n ln2 + r with n = rint(x log2 e) and
|r| <= ln2/2 (ln2 split in two parts, fused multiply-adds), exp(r) by its Taylor series to
degree 7 (truncation below 2^-24 relative on that interval), then 2^n as two exact powers
of two multiplied in turn, so n from -150 to 128 needs no special case: the largest finite
results and gradual underflow come out of the multiplications. Above ln(FLT_MAX) the result
is +inf, below ln of the smallest subnormal 0, and NaN stays NaN. Within 2 ulp of the exact
value over the normal range (tests/test_llvm_vector_math.py; 0.8 measured).
"""

from __future__ import annotations

import math
from typing import Protocol

LOG2E = 1.4426950408889634
LN2_HI = 0.693145751953125  # the high bits of ln 2: n * LN2_HI is exact for |n| < 2^9
LN2_LO = 1.4286068203094173e-06  # ln 2 - LN2_HI
EXP_MAX = 88.72283935546875  # ln(FLT_MAX) rounded down to float: above, +inf
EXP_MIN = -103.97208404541016  # ln of half the smallest subnormal: below, 0
TAYLOR_DEGREE = 7


class _Writer(Protocol):
    def assign(self, value: None, rhs: str) -> str: ...

    def call_intrinsic(self, name: str, result: str, args: list[tuple[str, str]]) -> str: ...

    def float_literal(self, value: float) -> str: ...


def _splat(value: str, lanes: int, elt: str) -> str:
    return "<" + ", ".join([f"{elt} {value}"] * lanes) + ">" if lanes else value


def exp_f32(e: _Writer, x: str, lanes: int = 0) -> str:
    """The LLVM IR of exp of the ``<lanes x float>`` value `x` (a ``float`` if `lanes` is
    0); returns the result's name."""
    vt, it = (f"<{lanes} x float>", f"<{lanes} x i32>") if lanes else ("float", "i32")
    bt = f"<{lanes} x i1>" if lanes else "i1"
    sfx = f"v{lanes}f32" if lanes else "f32"

    def c(value: float) -> str:
        return _splat(e.float_literal(value), lanes, "float")

    def op(text: str) -> str:
        return e.assign(None, text)

    def fma(a: str, b: str, acc: str) -> str:
        return e.call_intrinsic(f"llvm.fma.{sfx}", vt, [(vt, a), (vt, b), (vt, acc)])

    # clamp into [EXP_MIN, EXP_MAX] with compare + select, which keeps NaN (min/max would not)
    over = op(f"fcmp ogt {vt} {x}, {c(EXP_MAX)}")
    under = op(f"fcmp olt {vt} {x}, {c(EXP_MIN)}")
    xc = op(f"select {bt} {under}, {vt} {c(EXP_MIN)}, {vt} {op(f'select {bt} {over}, {vt} {c(EXP_MAX)}, {vt} {x}')}")
    n = e.call_intrinsic(f"llvm.rint.{sfx}", vt, [(vt, op(f"fmul {vt} {xc}, {c(LOG2E)}"))])
    neg_n = op(f"fneg {vt} {n}")
    r = fma(neg_n, c(LN2_LO), fma(neg_n, c(LN2_HI), xc))
    p = c(1.0 / math.factorial(TAYLOR_DEGREE))
    for k in range(TAYLOR_DEGREE - 1, -1, -1):
        p = fma(p, r, c(1.0 / math.factorial(k)))
    # 2^n = 2^a * 2^b with a = n >> 1, b = n - a: both within the normal exponents for n in [-150, 128]
    ni = op(f"fptosi {vt} {n} to {it}")
    a = op(f"ashr {it} {ni}, {_splat('1', lanes, 'i32')}")
    b = op(f"sub {it} {ni}, {a}")
    bias = _splat("127", lanes, "i32")
    shift = _splat("23", lanes, "i32")
    scaled = p
    for part in (a, b):
        biased = op(f"add {it} {part}, {bias}")
        power = op(f"bitcast {it} {op(f'shl {it} {biased}, {shift}')} to {vt}")
        scaled = op(f"fmul {vt} {scaled}, {power}")
    big = op(f"select {bt} {over}, {vt} {c(math.inf)}, {vt} {scaled}")
    return op(f"select {bt} {under}, {vt} {c(0.0)}, {vt} {big}")
