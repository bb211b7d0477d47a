"""Spinning worker threads for the CPU executor, in LLVM IR compiled with the kernels.

A launch hands one chunk of its range to each worker. Through a `ThreadPoolExecutor` that
is a queue, a condition variable and a futex wake per chunk: 20-50 us on a 2-vCPU VM,
against layers of 30-300 us (SqueezeNet has 32 launches). Here each worker is a Python
thread whose life is one ctypes call into `visc_worker`, which spins (GIL released) on its
context's epoch and calls the kernel itself, so a launch costs two ctypes calls and a cache
line hand-off. A worker that finds no work for `SPINS` polls returns to Python and sleeps on
an Event (no CPU burnt between inferences); the dispatcher learns that from the worker's
state word (a Dekker-style handshake with sequentially consistent stores and loads, so
either the worker sees the new epoch or the dispatcher sees it asleep) and sets the Event.
A dispatcher that waits long for a worker yields its core every poll: with more threads
than cores (parallel test processes), the worker it waits for may be the one descheduled.

Every kernel gets a companion ``<name>.packed(argv, lo, hi)`` that loads its pointer
arguments from an array, so the workers call any kernel through one signature.

Context of a worker: 8 int64 (one cache line): epoch, fn, argv, lo, hi, done, stop, state.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any

import numpy as np

SPINS = 40_000  # polls before an idle worker sleeps: about 1 ms (25 ns a poll on an EPYC)
YIELD_AFTER = 4_000  # polls of a waiting dispatcher before it yields its core each poll
EPOCH, FN, ARGV, LO, HI, DONE, STOP, STATE = range(8)
PACKED = ".packed"


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


def runtime_ir(x86: bool) -> str:
    """`visc_worker`, `visc_dispatch`, `visc_finish` and `visc_stop` (see the module docstring);
    the chunk count and a worker's context address are shared helpers, inlined."""
    pause = "  call void @llvm.x86.sse2.pause()\n" if x86 else ""
    decl = ("declare void @llvm.x86.sse2.pause()\n" if x86 else "") + "declare i32 @sched_yield()\n"
    return decl + f"""
define i64 @visc_worker(ptr %ctx, i64 %seen0, i64 %spins) {{
entry:
  %pe = getelementptr i64, ptr %ctx, i64 {EPOCH}
  %pfn = getelementptr i64, ptr %ctx, i64 {FN}
  %pargv = getelementptr i64, ptr %ctx, i64 {ARGV}
  %plo = getelementptr i64, ptr %ctx, i64 {LO}
  %phi = getelementptr i64, ptr %ctx, i64 {HI}
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
  %e1 = load atomic i64, ptr %pe seq_cst, align 8
  %new1 = icmp ne i64 %e1, %seen
  br i1 %new1, label %awake, label %asleep
asleep:
  ret i64 %seen
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
  %fn = load i64, ptr %pfn, align 8
  %argv = load i64, ptr %pargv, align 8
  %lo = load i64, ptr %plo, align 8
  %hi = load i64, ptr %phi, align 8
  %f = inttoptr i64 %fn to ptr
  %a = inttoptr i64 %argv to ptr
  %lo32 = trunc i64 %lo to i32
  %hi32 = trunc i64 %hi to i32
  call void %f(ptr %a, i32 %lo32, i32 %hi32)
  store atomic i64 %e, ptr %pdone release, align 8
  br label %wait
}}

define internal i64 @visc_chunks(i64 %workers, i64 %n) alwaysinline {{
entry:
  %all = add i64 %workers, 1
  %few = icmp slt i64 %n, %all
  %chunks = select i1 %few, i64 %n, i64 %all
  ret i64 %chunks
}}

define internal ptr @visc_ctx(ptr %ctxs, i64 %w) alwaysinline {{
entry:
  %base = mul i64 %w, 8
  %ctx = getelementptr i64, ptr %ctxs, i64 %base
  ret ptr %ctx
}}

define i64 @visc_dispatch(ptr %ctxs, i64 %workers, i64 %fn, i64 %argv, i64 %n) {{
entry:
  %chunks = call i64 @visc_chunks(i64 %workers, i64 %n)
  br label %loop
loop:
  %w = phi i64 [ 0, %entry ], [ %w1, %next ]
  %asleep = phi i64 [ 0, %entry ], [ %asleep1, %next ]
  %k = add i64 %w, 1
  %go = icmp slt i64 %k, %chunks
  br i1 %go, label %body, label %out
body:
  %ctx = call ptr @visc_ctx(ptr %ctxs, i64 %w)
  %nk = mul i64 %n, %k
  %lo = sdiv i64 %nk, %chunks
  %k2 = add i64 %k, 1
  %nk2 = mul i64 %n, %k2
  %hi = sdiv i64 %nk2, %chunks
  %pfn = getelementptr i64, ptr %ctx, i64 {FN}
  store i64 %fn, ptr %pfn, align 8
  %pargv = getelementptr i64, ptr %ctx, i64 {ARGV}
  store i64 %argv, ptr %pargv, align 8
  %plo = getelementptr i64, ptr %ctx, i64 {LO}
  store i64 %lo, ptr %plo, align 8
  %phi = getelementptr i64, ptr %ctx, i64 {HI}
  store i64 %hi, ptr %phi, align 8
  %pe = getelementptr i64, ptr %ctx, i64 {EPOCH}
  %e = load i64, ptr %pe, align 8
  %e1 = add i64 %e, 1
  store atomic i64 %e1, ptr %pe seq_cst, align 8
  %pstate = getelementptr i64, ptr %ctx, i64 {STATE}
  %state = load atomic i64, ptr %pstate seq_cst, align 8
  %asleep1 = add i64 %asleep, %state
  br label %next
next:
  %w1 = add i64 %w, 1
  br label %loop
out:
  ret i64 %asleep
}}

define void @visc_finish(ptr %ctxs, i64 %workers, i64 %fn, i64 %argv, i64 %n) {{
entry:
  %chunks = call i64 @visc_chunks(i64 %workers, i64 %n)
  %hi = sdiv i64 %n, %chunks
  %f = inttoptr i64 %fn to ptr
  %a = inttoptr i64 %argv to ptr
  %hi32 = trunc i64 %hi to i32
  call void %f(ptr %a, i32 0, i32 %hi32)
  br label %loop
loop:
  %w = phi i64 [ 0, %entry ], [ %w1, %joined ]
  %k = add i64 %w, 1
  %go = icmp slt i64 %k, %chunks
  br i1 %go, label %join, label %out
join:
  %ctx = call ptr @visc_ctx(ptr %ctxs, i64 %w)
  %pe = getelementptr i64, ptr %ctx, i64 {EPOCH}
  %pdone = getelementptr i64, ptr %ctx, i64 {DONE}
  %e = load i64, ptr %pe, align 8
  br label %poll
poll:
  %i = phi i64 [ 0, %join ], [ %i1, %wait ], [ %i1, %yield ]
  %d = load atomic i64, ptr %pdone acquire, align 8
  %ready = icmp eq i64 %d, %e
  br i1 %ready, label %joined, label %wait
wait:
{pause}  %i1 = add i64 %i, 1
  %long = icmp sgt i64 %i1, {YIELD_AFTER}
  br i1 %long, label %yield, label %poll
yield:
  %y = call i32 @sched_yield()
  br label %poll
joined:
  %w1 = add i64 %w, 1
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
  ret void
}}
"""


def _stop_all(stop: Any, ctxs: np.ndarray, events: list[threading.Event]) -> None:
    for w, event in enumerate(events):
        stop(ctxs[w].ctypes.data)
        event.set()


class Workers:
    """`count` spinning workers over the functions of `engine` (an MCJIT engine holding
    `runtime_ir`); `launch(packed, argv, n)` runs [0, n) of a packed kernel in chunks, the
    calling thread taking the first. The threads stop when this object is collected."""

    def __init__(self, engine: Any, count: int):
        address = engine.get_function_address
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        worker = ctypes.CFUNCTYPE(i64, ptr, i64, i64)(address("visc_worker"))
        self._dispatch = ctypes.CFUNCTYPE(i64, ptr, i64, i64, i64, i64)(address("visc_dispatch"))
        self._finish = ctypes.CFUNCTYPE(None, ptr, i64, i64, i64, i64)(address("visc_finish"))
        stop = ctypes.CFUNCTYPE(None, ptr)(address("visc_stop"))
        raw = np.zeros((count + 1) * 8, dtype=np.int64)  # rows of one 64-byte line each
        start = (-raw.ctypes.data % 64) // 8
        self.ctxs = raw[start:start + count * 8].reshape(count, 8)
        self.count = count
        self.events = [threading.Event() for _ in range(count)]
        self._ctxs_ptr = self.ctxs.ctypes.data

        # the threads hold the engine: the code they run must outlive them
        def loop(ctx: int, event: threading.Event, keep: Any = (raw, engine, worker)) -> None:
            seen = 0
            while True:
                seen = worker(ctx, seen, SPINS)
                if seen < 0:
                    return
                event.wait()
                event.clear()

        self.threads = [threading.Thread(target=loop, args=(self.ctxs[w].ctypes.data, self.events[w]),
                                         name=f"visc-cpu-{w + 1}", daemon=True) for w in range(count)]
        for t in self.threads:
            t.start()
        self._finalizer = weakref.finalize(self, _stop_all, stop, self.ctxs, self.events)

    def launch(self, packed: int, argv: int, n: int) -> None:
        if self._dispatch(self._ctxs_ptr, self.count, packed, argv, n):  # how many found asleep
            for w in np.flatnonzero(self.ctxs[:, STATE]):
                self.events[w].set()
        self._finish(self._ctxs_ptr, self.count, packed, argv, n)

    def close(self) -> None:
        self._finalizer()
        for t in self.threads:
            t.join()


__all__ = ["Workers", "packed_wrappers", "runtime_ir", "PACKED", "SPINS"]
