"""Spinning worker threads for the CPU executor, and the loop that runs a plan's launches,
in LLVM IR compiled with the kernels.

A frame is one ctypes call (`visc_run`) that runs every launch of the plan in native code,
so the GIL is released once per frame, not once per launch: with other Python threads busy
(the pipeline's stages, a CUDA stage's host thread) each re-acquisition waits for the
interpreter's switch interval, which made a 3 ms SqueezeNet frame take 28 ms.

A launch is cut into grains (`GRAINS_PER_THREAD` per thread, at most one per range
step) that the threads claim one at a time with a compare-and-swap on a shared word, the
calling thread included; it then waits only for grains others claimed and still run. A worker
whose core another process took claims nothing and delays nothing: with one chunk per thread
(the first design), a launch waited for its slowest worker, and with a busy process on one of
two cores SqueezeNet ran 2-5x slower than alone. Through a `ThreadPoolExecutor` handing a
worker its grain is a queue, a condition variable and a futex wake: 20-50 us on a 2-vCPU VM,
against layers of 30-300 us (SqueezeNet has 32 launches). Here each worker is a Python
thread whose life is one ctypes call into `visc_worker`, which spins (GIL released) on its
context's epoch and claims grains itself, so a launch costs a few cache line hand-offs. A
worker that finds no work for `SPINS` polls sleeps in native code: on Linux a futex wait on
its epoch word (the dispatcher wakes it with a futex wake when its state word says so: a
Dekker-style handshake with sequentially consistent stores and loads, so either the worker
sees the new epoch or the dispatcher sees it asleep), elsewhere naps of `NAP_US` that
re-check the epoch. No worker ever needs the GIL again until it stops. A dispatcher that
waits long for a grain yields its core every poll: with more threads than cores
(parallel test processes), the worker it waits for may be the one descheduled.

The pool serves one launch at a time (a lock word taken with a compare-and-swap): a launch
that finds it busy runs its whole range in the calling thread.

Every kernel gets a companion ``<name>.packed(argv, lo, hi)`` that loads its pointer
arguments from an array, so the workers and `visc_run` call any kernel through one
signature; `visc_run` reads a table of (packed address, argv address, range) rows.

Context of a worker: 8 int64 (one cache line): epoch, the shared block's address, -, -, -,
done (the last epoch served), stop, state. The shared block: the launch word (generation << 32
| next grain) on a line of its own, then two launch slots (fn, argv, range, grains, grains
finished), one per generation parity, so a worker that read a finished launch's word never
claims from a slot being rewritten (`visc_grab`).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading
import time
import weakref
from typing import Any

import numpy as np

SPINS = 40_000  # polls before an idle worker sleeps: about 1 ms (25 ns a poll on an EPYC)
YIELD_AFTER = 4_000  # polls of a waiting dispatcher before it yields its core each poll
NAP_US = 200  # without futexes: an idle worker's nap between looks at its epoch
FUTEX_TIMEOUT_NS = 100_000_000  # a futex wait re-checks its epoch this often (no lost wake hangs)
EPOCH, SHARED, DONE, STOP, STATE = 0, 1, 5, 6, 7  # a worker's context words
S_FN, S_ARGV, S_N, GRAINS, FINISHED = range(5)  # a launch slot's words
GRAINS_PER_THREAD = 4  # a launch's range in this many grains per thread, claimed as threads come
PACKED = ".packed"
ROW = 3  # int64 per `visc_run` table row: packed address, argv address, range
_FUTEX_SYSCALL = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}


def futex_syscall() -> int | None:
    """The futex system call's number on this host (Linux x86-64 or aarch64), else None
    (`VISC_CPU_FUTEX=0` also says None: the workers nap instead)."""
    if not sys.platform.startswith("linux") or os.environ.get("VISC_CPU_FUTEX", "1") == "0":
        return None
    return _FUTEX_SYSCALL.get(platform.machine().lower())


def packed_wrappers(functions: list[tuple[str, list[str]]]) -> str:
    """LLVM IR of ``<name>.packed(ptr argv, i32 lo, i32 hi)`` for kernels given as (name,
    argument types); the kernels' own arguments are pointers, then the i32 range."""
    out = []
    for name, types in functions:
        ptrs = types[:-2]
        out.append(f'declare void @"{name}"({", ".join(types)})')
        body = []
        for i in range(len(ptrs)):
            body.append(f"  %g{i} = getelementptr ptr, ptr %argv, i64 {i}")
            body.append(f"  %p{i} = load ptr, ptr %g{i}, align 8")
        args = ", ".join([f"ptr %p{i}" for i in range(len(ptrs))] + ["i32 %lo", "i32 %hi"])
        out.append(f'define void @"{name}{PACKED}"(ptr %argv, i32 %lo, i32 %hi) {{\nentry:\n'
                   + "".join(line + "\n" for line in body) + f'  call void @"{name}"({args})\n  ret void\n}}')
    return "\n".join(out) + "\n"


def runtime_ir(x86: bool, futex: int | None = None) -> str:
    """`visc_worker`, `visc_grab`, `visc_share`, `visc_run`, `visc_try_lock` and `visc_stop`
    (see the module docstring); ``futex``: the futex system call's number, or None for
    napping workers."""
    pause = "  call void @llvm.x86.sse2.pause()\n" if x86 else ""
    decl = ("declare void @llvm.x86.sse2.pause()\n" if x86 else "") + "declare i32 @sched_yield()\n"
    if futex is None:
        decl += "declare i32 @usleep(i32)\n"
        doze = f"  %z = call i32 @usleep(i32 {NAP_US})\n"
        wake = ""
    else:
        decl += (f"declare i64 @syscall(i64, ...)\n"
                 f"@visc_nap = internal constant {{i64, i64}} {{i64 0, i64 {FUTEX_TIMEOUT_NS}}}\n")
        doze = (f"  %z = call i64 (i64, ...) @syscall(i64 {futex}, ptr %pe, i64 128, i64 %seen, "
                "ptr @visc_nap)\n")  # FUTEX_WAIT_PRIVATE: sleep while *pe == seen (low 32 bits)
        wake = f"  %w = call i64 (i64, ...) @syscall(i64 {futex}, ptr %pe, i64 129, i64 1)\n"  # FUTEX_WAKE_PRIVATE
    return decl + f"""
define i64 @visc_worker(ptr %ctx, i64 %seen0, i64 %spins) {{
entry:
  %pe = getelementptr i64, ptr %ctx, i64 {EPOCH}
  %pshared = getelementptr i64, ptr %ctx, i64 {SHARED}
  %pdone = getelementptr i64, ptr %ctx, i64 {DONE}
  %pstop = getelementptr i64, ptr %ctx, i64 {STOP}
  %pstate = getelementptr i64, ptr %ctx, i64 {STATE}
  store atomic i64 0, ptr %pstate seq_cst, align 8
  br label %wait
wait:
  %seen = phi i64 [ %seen0, %entry ], [ %e, %run ]
  br label %spin
spin:
  %i = phi i64 [ 0, %wait ], [ %i1, %again ]
  %e0 = load atomic i64, ptr %pe seq_cst, align 8
  %new0 = icmp ne i64 %e0, %seen
  br i1 %new0, label %work, label %again
again:
{pause}  %i1 = add i64 %i, 1
  %more = icmp slt i64 %i1, %spins
  br i1 %more, label %spin, label %sleep
sleep:
  store atomic i64 1, ptr %pstate seq_cst, align 8
  br label %look
look:
  %e1 = load atomic i64, ptr %pe seq_cst, align 8
  %new1 = icmp ne i64 %e1, %seen
  br i1 %new1, label %awake, label %doze
doze:
{doze}  br label %look
awake:
  store atomic i64 0, ptr %pstate seq_cst, align 8
  br label %work
work:
  %e = phi i64 [ %e0, %spin ], [ %e1, %awake ]
  %stop = load atomic i64, ptr %pstop seq_cst, align 8
  %stopped = icmp ne i64 %stop, 0
  br i1 %stopped, label %quit, label %run
quit:
  ret i64 -1
run:
  %shared = load i64, ptr %pshared, align 8
  %sp = inttoptr i64 %shared to ptr
  call void @visc_grab(ptr %sp)
  store atomic i64 %e, ptr %pdone release, align 8
  br label %wait
}}

define internal ptr @visc_ctx(ptr %ctxs, i64 %w) alwaysinline {{
entry:
  %base = mul i64 %w, 8
  %ctx = getelementptr i64, ptr %ctxs, i64 %base
  ret ptr %ctx
}}

; the launch slot of generation %gen: the 8 words after the launch word's line, or the 8 after those
define internal ptr @visc_slot(ptr %shared, i64 %gen) alwaysinline {{
entry:
  %parity = and i64 %gen, 1
  %off = mul i64 %parity, 8
  %slot0 = getelementptr i64, ptr %shared, i64 8
  %slot = getelementptr i64, ptr %slot0, i64 %off
  ret ptr %slot
}}

define internal void @visc_wake(ptr %pe) alwaysinline {{
entry:
{wake}  ret void
}}

; Claim grains of the current launch until none is left. %shared: the next word
; (generation << 32 | next grain), then two launch slots of 8 words (fn, argv, n, grains,
; finished grains), one per generation parity. The fields are read before the claim and the
; claim is a compare-and-swap of the whole word, so a claim that succeeds read the fields of
; its own generation (a new launch bumps the generation after writing the other slot).
define void @visc_grab(ptr %shared) {{
entry:
  br label %claim
claim:
  %v = load atomic i64, ptr %shared seq_cst, align 8
  %gen = lshr i64 %v, 32
  %idx = and i64 %v, 4294967295
  %slot = call ptr @visc_slot(ptr %shared, i64 %gen)
  %pg = getelementptr i64, ptr %slot, i64 {GRAINS}
  %grains = load atomic i64, ptr %pg acquire, align 8
  %left = icmp slt i64 %idx, %grains
  br i1 %left, label %try, label %out
try:
  %pf = getelementptr i64, ptr %slot, i64 {S_FN}
  %fn = load atomic i64, ptr %pf monotonic, align 8
  %pa = getelementptr i64, ptr %slot, i64 {S_ARGV}
  %argv = load atomic i64, ptr %pa monotonic, align 8
  %pn = getelementptr i64, ptr %slot, i64 {S_N}
  %n = load atomic i64, ptr %pn monotonic, align 8
  %v1 = add i64 %v, 1
  %r = cmpxchg ptr %shared, i64 %v, i64 %v1 seq_cst seq_cst
  %ok = extractvalue {{ i64, i1 }} %r, 1
  br i1 %ok, label %run, label %claim
run:
  %nk = mul i64 %n, %idx
  %lo = sdiv i64 %nk, %grains
  %idx1 = add i64 %idx, 1
  %nk1 = mul i64 %n, %idx1
  %hi = sdiv i64 %nk1, %grains
  %f = inttoptr i64 %fn to ptr
  %a = inttoptr i64 %argv to ptr
  %lo32 = trunc i64 %lo to i32
  %hi32 = trunc i64 %hi to i32
  call void %f(ptr %a, i32 %lo32, i32 %hi32)
  %pfin = getelementptr i64, ptr %slot, i64 {FINISHED}
  %old = atomicrmw add ptr %pfin, i64 1 release, align 8
  br label %claim
out:
  ret void
}}

; One launch over the pool: publish it in the slot of the next generation, wake the workers,
; claim grains here too, then wait for the grains others claimed. A worker that has not woken
; (its core taken by another process) claims nothing and holds nothing up.
define void @visc_share(ptr %ctxs, i64 %workers, ptr %shared, i64 %fn, i64 %argv, i64 %n) {{
entry:
  %all = add i64 %workers, 1
  %many = mul i64 %all, {GRAINS_PER_THREAD}
  %few = icmp slt i64 %n, %many
  %grains = select i1 %few, i64 %n, i64 %many
  %v = load atomic i64, ptr %shared seq_cst, align 8
  %gen = lshr i64 %v, 32
  %gen1 = add i64 %gen, 1
  %slot = call ptr @visc_slot(ptr %shared, i64 %gen1)
  %pf = getelementptr i64, ptr %slot, i64 {S_FN}
  store atomic i64 %fn, ptr %pf monotonic, align 8
  %pa = getelementptr i64, ptr %slot, i64 {S_ARGV}
  store atomic i64 %argv, ptr %pa monotonic, align 8
  %pn = getelementptr i64, ptr %slot, i64 {S_N}
  store atomic i64 %n, ptr %pn monotonic, align 8
  %pfin = getelementptr i64, ptr %slot, i64 {FINISHED}
  store atomic i64 0, ptr %pfin monotonic, align 8
  %pg = getelementptr i64, ptr %slot, i64 {GRAINS}
  store atomic i64 %grains, ptr %pg release, align 8
  %start = shl i64 %gen1, 32
  store atomic i64 %start, ptr %shared seq_cst, align 8
  br label %loop
loop:
  %w = phi i64 [ 0, %entry ], [ %w1, %next ]
  %go = icmp slt i64 %w, %workers
  br i1 %go, label %body, label %mine
body:
  %ctx = call ptr @visc_ctx(ptr %ctxs, i64 %w)
  %pe = getelementptr i64, ptr %ctx, i64 {EPOCH}
  %e = load i64, ptr %pe, align 8
  %e1 = add i64 %e, 1
  store atomic i64 %e1, ptr %pe seq_cst, align 8
  %pstate = getelementptr i64, ptr %ctx, i64 {STATE}
  %state = load atomic i64, ptr %pstate seq_cst, align 8
  %asleep = icmp ne i64 %state, 0
  br i1 %asleep, label %rouse, label %next
rouse:
  call void @visc_wake(ptr %pe)
  br label %next
next:
  %w1 = add i64 %w, 1
  br label %loop
mine:
  call void @visc_grab(ptr %shared)
  br label %poll
poll:
  %i = phi i64 [ 0, %mine ], [ %i1, %wait ], [ %i1, %yield ]
  %d = load atomic i64, ptr %pfin acquire, align 8
  %ready = icmp sge i64 %d, %grains
  br i1 %ready, label %out, label %wait
wait:
{pause}  %i1 = add i64 %i, 1
  %long = icmp sgt i64 %i1, {YIELD_AFTER}
  br i1 %long, label %yield, label %poll
yield:
  %y = call i32 @sched_yield()
  br label %poll
out:
  ret void
}}

define i64 @visc_try_lock(ptr %lock) {{
entry:
  %r = cmpxchg ptr %lock, i64 0, i64 1 acquire monotonic
  %ok = extractvalue {{ i64, i1 }} %r, 1
  %got = zext i1 %ok to i64
  ret i64 %got
}}

define void @visc_run(ptr %ctxs, i64 %workers, ptr %lock, ptr %table, i64 %count) {{
entry:
  %pool = icmp sgt i64 %workers, 0
  br label %loop
loop:
  %c = phi i64 [ 0, %entry ], [ %c1, %next ]
  %more = icmp slt i64 %c, %count
  br i1 %more, label %row, label %out
row:
  %base = mul i64 %c, {ROW}
  %pfn = getelementptr i64, ptr %table, i64 %base
  %fn = load i64, ptr %pfn, align 8
  %pa = getelementptr i64, ptr %pfn, i64 1
  %argv = load i64, ptr %pa, align 8
  %pn = getelementptr i64, ptr %pfn, i64 2
  %n = load i64, ptr %pn, align 8
  %split = icmp sge i64 %n, 2
  %try = and i1 %pool, %split
  br i1 %try, label %take, label %alone
take:
  %got = call i64 @visc_try_lock(ptr %lock)
  %ok = icmp ne i64 %got, 0
  br i1 %ok, label %shared, label %alone
shared:
  %sh = getelementptr i64, ptr %lock, i64 8
  call void @visc_share(ptr %ctxs, i64 %workers, ptr %sh, i64 %fn, i64 %argv, i64 %n)
  store atomic i64 0, ptr %lock release, align 8
  br label %next
alone:
  %f = inttoptr i64 %fn to ptr
  %a = inttoptr i64 %argv to ptr
  %n32 = trunc i64 %n to i32
  call void %f(ptr %a, i32 0, i32 %n32)
  br label %next
next:
  %c1 = add i64 %c, 1
  br label %loop
out:
  ret void
}}

define void @visc_stop(ptr %ctx) {{
entry:
  %pstop = getelementptr i64, ptr %ctx, i64 {STOP}
  store atomic i64 1, ptr %pstop seq_cst, align 8
  %pe = getelementptr i64, ptr %ctx, i64 {EPOCH}
  %e = load i64, ptr %pe, align 8
  %e1 = add i64 %e, 1
  store atomic i64 %e1, ptr %pe seq_cst, align 8
  call void @visc_wake(ptr %pe)
  ret void
}}
"""


def _stop_all(stop: Any, ctxs: np.ndarray) -> None:
    for w in range(len(ctxs)):
        stop(ctxs[w].ctypes.data)


def _aligned_words(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` int64 starting on a 64-byte line, and the array that owns them."""
    raw = np.zeros(count + 8, dtype=np.int64)
    start = (-raw.ctypes.data % 64) // 8
    return raw[start:start + count], raw


class Workers:
    """`count` spinning workers over the functions of `engine` (an MCJIT engine holding
    `runtime_ir`), and the lock word that gives one launch at a time the pool
    (`visc_run`'s ``lock``). The threads stop when this object is collected."""

    def __init__(self, engine: Any, count: int):
        address = engine.get_function_address
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        worker = ctypes.CFUNCTYPE(i64, ptr, i64, i64)(address("visc_worker"))
        stop = ctypes.CFUNCTYPE(None, ptr)(address("visc_stop"))
        self._try_lock = ctypes.CFUNCTYPE(i64, ptr)(address("visc_try_lock"))
        # one line per context, the lock's, the launch word's, two launch slots (`visc_share`)
        words, raw = _aligned_words((count + 4) * 8)
        self.ctxs = words[:count * 8].reshape(count, 8)
        self.lock = words[count * 8:count * 8 + 8]
        self.shared = words[count * 8 + 8:]
        self.ctxs[:, SHARED] = self.shared.ctypes.data
        self.count = count
        self.ctxs_ptr = self.ctxs.ctypes.data
        self.lock_ptr = self.lock.ctypes.data

        # the threads hold the engine: the code they run must outlive them
        def loop(ctx: int, keep: Any = (raw, engine, worker)) -> None:
            worker(ctx, 0, SPINS)  # returns when stopped

        self.threads = [threading.Thread(target=loop, args=(self.ctxs[w].ctypes.data,),
                                         name=f"visc-cpu-{w + 1}", daemon=True) for w in range(count)]
        for t in self.threads:
            t.start()
        self._finalizer = weakref.finalize(self, _stop_all, stop, self.ctxs)

    def close(self) -> None:
        """Stop the threads, once no launch holds the pool."""
        while not self._try_lock(self.lock_ptr):
            time.sleep(0.0005)
        self._finalizer()
        for t in self.threads:
            t.join()


__all__ = ["Workers", "packed_wrappers", "runtime_ir", "futex_syscall", "PACKED", "ROW", "SPINS"]
