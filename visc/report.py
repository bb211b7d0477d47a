"""`CompileReport`: what a compilation did and cost. Its own module, free of the compiler's
imports, so a model the compile cache returns (`visc.model_cache`) carries one without
loading xDSL."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CompileReport:
    """What a compilation did and cost, shown by `visc compile -v` and the benchmarks."""

    seconds: dict[str, float] = field(default_factory=dict)
    arena_bytes: int = 0
    arena_naive_bytes: int = 0
    num_kernels: int = 0
    num_launches: int = 0
    cached: bool = False  # the model came from the compile cache (`seconds`: the lookup alone)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


__all__ = ["CompileReport"]
