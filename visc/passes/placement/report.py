"""`visc import --show-placement`: the table of where each op of a model runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xdsl.dialects.builtin import StringAttr

from visc.passes.placement import placement_spec
from visc.passes.placement.placement import compute_ops, entry, placement_of


def placements(imported: Any, target: str = "opencl", fallback: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """(ONNX node, ONNX op, device) per compute op after the graph passes and placement."""
    from visc.compiler import GRAPH_PIPELINE, run_passes

    run_passes(imported.module, [*GRAPH_PIPELINE, placement_spec(target, fallback or ()), "vision-insert-copies"],
               imported.weights)
    rows = []
    for op in compute_ops(entry(imported.module)):
        node, kind = op.attributes.get("onnx_node"), op.attributes.get("onnx_op")
        rows.append((node.data if isinstance(node, StringAttr) else "?",
                     kind.data if isinstance(kind, StringAttr) else op.name, placement_of(op) or "?"))
    return rows


def show_placement(imported: Any, target: str = "opencl", fallback: Sequence[str] | None = None) -> str:
    rows = placements(imported, target, fallback)
    width = max([len("ONNX node"), *(len(r[0]) for r in rows)])
    op_width = max([len("op"), *(len(r[1]) for r in rows)])
    lines = [f"{'ONNX node':<{width}}  {'op':<{op_width}}  device"]
    lines += [f"{n:<{width}}  {o:<{op_width}}  {d}" for n, o, d in rows]
    fn = entry(imported.module)
    copies = fn.attributes.get("vision.num_copies")
    lines.append(f"{sum(r[2] == 'cpu' for r in rows)} of {len(rows)} ops on the CPU, "
                 f"{int(copies.value.data) if copies is not None else 0} device copies")  # type: ignore[attr-defined]
    return "\n".join(lines)


__all__ = ["placements", "show_placement"]
