"""ONNX -> vision dialect (docs/ir.md "Stage 1").

    imported = import_model("resnet50.onnx", input_shapes={"data": (8, 3, 224, 224)})
    imported.module   # builtin.module with func.func @main
    imported.weights  # WeightStore the module's vision.weight ops refer to

The importer checks the whole model before building IR (unsupported ops, inputs that must
be constants), folds every node whose inputs are known (shape arithmetic, weight
preprocessing), and computes every shape itself from the op semantics, so a wrong
`input_shapes` entry is reported at the first node it breaks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import GraphProto, ModelProto, NodeProto, ValueInfoProto
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DenseArrayBase, ModuleOp, StringAttr, i64
from xdsl.ir import Block, Region

from visc.errors import InputShapeError, ModelLoadError, UnsupportedModelError
from visc.frontend.context import (
    ImportContext,
    Node,
    NodeError,
    ShapeFault,
    Tensor,
    Unsupported,
    node_display_name,
    sanitize,
)
from visc.frontend.dtypes import numpy_dtype, onnx_type_name, tensor_type
from visc.frontend.folding import fold, has_subgraph, initializer_array, is_foldable
from visc.frontend.model_file import load_model
from visc.frontend.registry import load_all
from visc.weights import WeightStore

MIN_OPSET = 7
# Ops imported only by constant folding: known to exist, but with no run-time lowering.
FOLD_ONLY = frozenset({"Range", "ConstantOfShape", "EyeLike"})


@dataclass
class ImportedModel:
    """A model in the vision dialect with its weights and I/O signature."""

    module: ModuleOp
    weights: WeightStore
    input_names: list[str]
    output_names: list[str]
    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]]
    input_dtypes: list[np.dtype]
    output_dtypes: list[np.dtype]


# --------------------------------------------------------------------------- loading


def _skeleton(proto: ModelProto) -> ModelProto:
    """The model with empty initializers and no intermediate value_info: the checker's structural
    rules without the cost of serializing hundreds of megabytes of weights."""
    g = proto.graph
    graph = GraphProto(name=g.name, doc_string=g.doc_string)
    for field in ("node", "input", "output", "quantization_annotation"):
        getattr(graph, field).extend(getattr(g, field))
    for vi in [*graph.input, *graph.output]:
        # an absent shape (unknown rank) is common in exported models; the checker wants one
        if vi.type.HasField("tensor_type") and not vi.type.tensor_type.HasField("shape"):
            vi.type.tensor_type.shape.SetInParent()
    for t in g.initializer:
        graph.initializer.append(onnx.TensorProto(name=t.name, data_type=t.data_type, dims=[0]))
    skel = ModelProto(ir_version=proto.ir_version, producer_name=proto.producer_name, graph=graph)
    skel.opset_import.extend(proto.opset_import)
    skel.functions.extend(proto.functions)
    return skel


def _validate(proto: ModelProto, label: str) -> None:
    if not proto.HasField("graph"):
        raise ModelLoadError(f"cannot read ONNX model '{label}': it has no graph (truncated or not an ONNX file?)")
    try:
        onnx.checker.check_model(_skeleton(proto))
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        raise ModelLoadError(f"cannot read ONNX model '{label}': it is not a valid ONNX model: {first}") from None


# --------------------------------------------------------------------------- graph order


def _sorted_nodes(graph: GraphProto, known: set[str], label: str) -> list[tuple[int, NodeProto]]:
    """Nodes in a topological order (stable), with their original indices."""
    nodes = list(enumerate(graph.node))
    producers = {o: i for i, n in nodes for o in n.output if o}
    defined = set(known)
    done: list[tuple[int, NodeProto]] = []
    pending = nodes
    while pending:
        rest = []
        for i, n in pending:
            if all(not name or name in defined for name in n.input):
                done.append((i, n))
                defined.update(o for o in n.output if o)
            else:
                rest.append((i, n))
        if len(rest) == len(pending):
            i, n = rest[0]
            missing = next(name for name in n.input if name and name not in defined)
            why = "is produced in a cycle" if missing in producers else "is never defined"
            raise ModelLoadError(
                f"cannot read ONNX model '{label}': node '{node_display_name(n, i)}' ({n.op_type}) "
                f"reads '{missing}', which {why}"
            )
        pending = rest
    return done


# --------------------------------------------------------------------------- the importer


def _same_since(node: NodeProto, opset: int) -> bool:
    """Whether `node`'s op has, at `opset`, the definition it has at MIN_OPSET (Not, Conv, Softmax
    ... since opset 1), so a model older than MIN_OPSET can use it as visc implements it."""
    if node.domain not in ("", "ai.onnx"):
        return False
    try:
        old = onnx.defs.get_schema(node.op_type, opset).since_version
        return old == onnx.defs.get_schema(node.op_type, MIN_OPSET).since_version
    except onnx.defs.SchemaError:
        return False


def _declared_shape(vi: ValueInfoProto) -> list[int | str | None] | None:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def _fmt(shape: Sequence[object]) -> str:
    return "(" + ", ".join(str(d) if d is not None else "?" for d in shape) + ")"


class _Importer:
    def __init__(self, proto: ModelProto, label: str):
        self.proto = proto
        self.label = label
        self.graph = proto.graph
        self.opsets = {(o.domain if o.domain != "ai.onnx" else ""): int(o.version) for o in proto.opset_import}
        self.opset = self.opsets.get("", MIN_OPSET)
        self.converters = load_all()
        self.initializers = {t.name: t for t in self.graph.initializer}
        self.inputs = [vi for vi in self.graph.input if vi.name not in self.initializers]
        self.changed_inputs: list[str] = []

    # -- checks before any IR is built ------------------------------------------------

    def problems(self, nodes: list[tuple[int, NodeProto]]) -> list[str]:
        """Everything that stops the import, found without building IR."""
        problems: list[str] = []
        if self.opset < MIN_OPSET:
            changed = sorted({n.op_type for _, n in nodes if not _same_since(n, self.opset)})
            if changed:
                problems.append(f"opset {self.opset} is older than the oldest supported ({MIN_OPSET}), and "
                                f"{', '.join(changed)} changed since")
        for kind, vi in [*(("input", v) for v in self.inputs), *(("output", v) for v in self.graph.output)]:
            tt = vi.type
            elem = tt.tensor_type.elem_type
            if not tt.HasField("tensor_type"):
                problems.append(f"{kind} '{vi.name}' is not a tensor ({tt.WhichOneof('value')})")
            elif (elem or kind == "input") and numpy_dtype(elem) is None:
                problems.append(f"{kind} '{vi.name}' has element type {onnx_type_name(elem)}, which is not supported")
        unsupported: dict[str, list[str]] = {}
        const = set(self.initializers)
        for i, node in nodes:
            name = node_display_name(node, i)
            if is_foldable(node, const):
                const.update(o for o in node.output if o)
                continue
            conv = self.converters.get(node.op_type)
            if node.op_type in FOLD_ONLY and node.domain in ("", "ai.onnx"):
                problems.append(f"{node.op_type} node '{name}': its inputs must be constants known at import time")
                continue
            if conv is None or node.domain not in ("", "ai.onnx") or has_subgraph(node):
                key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
                unsupported.setdefault(key, []).append(name)
                continue
            for k in conv.const_inputs:
                if k < len(node.input) and node.input[k] and node.input[k] not in const:
                    problems.append(
                        f"{node.op_type} node '{name}': input {k + 1} ('{node.input[k]}') must be a "
                        "constant known at import time"
                    )
            if conv.check is not None:
                problems.extend(f"{node.op_type} node '{name}': {p}" for p in conv.check(node, self.opset))
            const.update(node.output[k] for k in conv.const_outputs if k < len(node.output) and node.output[k])
        for op_type, names in sorted(unsupported.items()):
            shown = ", ".join(f"'{n}'" for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            problems.insert(0, f"unsupported op {op_type} ({'node' if len(names) == 1 else 'nodes'} {shown})")
        return problems

    def sorted_nodes(self) -> list[tuple[int, NodeProto]]:
        known = set(self.initializers) | {vi.name for vi in self.inputs}
        return _sorted_nodes(self.graph, known, self.label)

    def input_shapes(self, given: Mapping[str, Sequence[int]] | None) -> list[tuple[int, ...]]:
        given = dict(given or {})
        names = [vi.name for vi in self.inputs]
        unknown = [k for k in given if k not in names]
        if unknown:
            raise InputShapeError(
                f"no model input named {', '.join(repr(k) for k in unknown)}; the inputs are "
                + ", ".join(repr(n) for n in names)
            )
        shapes = []
        for vi in self.inputs:
            declared = _declared_shape(vi)
            if vi.name in given:
                try:
                    shape = tuple(int(d) for d in given[vi.name])
                except (TypeError, ValueError):
                    raise InputShapeError(f"input '{vi.name}': shape {given[vi.name]!r} is not a list of integers") from None
                if any(d < 0 for d in shape):
                    raise InputShapeError(f"input '{vi.name}': given shape {_fmt(shape)} has a negative dim")
                if declared is not None and len(declared) != len(shape):
                    raise InputShapeError(
                        f"input '{vi.name}': given shape {_fmt(shape)} has rank {len(shape)}, but the model "
                        f"expects rank {len(declared)} {_fmt(declared)}"
                    )
                if declared is None or any(d != s for d, s in zip(declared, shape, strict=True)):
                    self.changed_inputs.append(vi.name)
                shapes.append(shape)
                continue
            if declared is None:
                raise InputShapeError(f"input '{vi.name}' has no declared shape; give one with --input-shape {vi.name}=...")
            free = [i for i, d in enumerate(declared) if not isinstance(d, int)]
            if free and free != [0]:
                raise InputShapeError(
                    f"input '{vi.name}' has dynamic dims {_fmt(declared)}; give its shape with "
                    f"--input-shape {vi.name}=" + ",".join("N" if not isinstance(d, int) else str(d) for d in declared)
                )
            shapes.append(tuple(1 if i in free else int(d) for i, d in enumerate(declared)))  # type: ignore[arg-type]
        return shapes

    def shape_error(self, node: Node, message: str, shapes: dict[str, tuple[int, ...]]) -> Exception:
        where = f"node '{node.name}' ({node.op_type})"
        if self.changed_inputs:
            parts = []
            for vi in self.inputs:
                if vi.name in self.changed_inputs:
                    declared = _declared_shape(vi)
                    expected = "no shape" if declared is None else _fmt(declared)
                    parts.append(f"input '{vi.name}' has the given shape {_fmt(shapes[vi.name])}, the model declares {expected}")
            return InputShapeError("; ".join(parts) + f"; with it, {where} fails: {message}")
        return UnsupportedModelError([f"{where}: {message}"], header=f"the model '{self.label}' cannot be imported")

    # -- building -----------------------------------------------------------------------

    def run(self, given: Mapping[str, Sequence[int]] | None) -> ImportedModel:
        nodes = self.sorted_nodes()
        problems = self.problems(nodes)
        if problems:
            raise UnsupportedModelError(problems, header=f"the model '{self.label}' cannot be compiled")
        shapes = self.input_shapes(given)
        in_dtypes = [numpy_dtype(vi.type.tensor_type.elem_type) for vi in self.inputs]
        block = Block(arg_types=[tensor_type(s, d) for s, d in zip(shapes, in_dtypes, strict=True)])  # type: ignore[arg-type]
        weights = WeightStore()
        ctx = ImportContext(block, weights, self.opset)
        env: dict[str, Tensor] = {}
        for name, t in self.initializers.items():
            env[name] = Tensor.constant(initializer_array(t), name)
        for vi, arg, shape, dt in zip(self.inputs, block.args, shapes, in_dtypes, strict=True):
            arg.name_hint = sanitize(vi.name)
            env[vi.name] = Tensor(shape, dt, value=arg, hint=vi.name)  # type: ignore[arg-type]
        used = {name for _, n in nodes for name in n.input if name} | {o.name for o in self.graph.output}
        for index, proto in nodes:
            node = Node(proto, index, self.opset, [env[n] if n else None for n in proto.input],
                        [bool(o) and o in used for o in proto.output])
            ctx.node = node
            try:
                outs = self.convert(ctx, node)
            except ShapeFault as e:
                raise self.shape_error(node, str(e), dict(zip([vi.name for vi in self.inputs], shapes, strict=True))) from None
            except NodeError as e:
                raise UnsupportedModelError(
                    [f"{node.op_type} node '{node.name}': {e}"], header=f"the model '{self.label}' cannot be compiled"
                ) from None
            for name, t in zip(proto.output, outs, strict=False):
                if not name:
                    continue
                if t is None:
                    if name in used:
                        raise UnsupportedModelError([f"{node.op_type} node '{node.name}': output '{name}' is not supported"])
                    continue
                if t.value is not None and t.value.name_hint is None:
                    t.value.name_hint = sanitize(name)
                if t.const is not None and not t.hint:
                    t.hint = name
                env[name] = t
        out_tensors = [env[o.name] for o in self.graph.output]
        ctx.node = None
        results = [ctx.materialize(t) for t in out_tensors]
        out_names = [o.name for o in self.graph.output]
        out_dtypes = [t.dtype for t in out_tensors]
        # outputs with a data-dependent row count return their count as a hidden extra result
        counts = [-1] * len(out_tensors)
        all_names, all_dtypes = list(out_names), list(out_dtypes)
        for j, t in enumerate(out_tensors):
            if t.count is not None:
                counts[j] = len(results)
                results.append(ctx.materialize(t.count))
                all_names.append(f"{out_names[j]}:count")
                all_dtypes.append(t.count.dtype)
        block.add_op(func.ReturnOp(*results))
        main = func.FuncOp("main", ([a.type for a in block.args], [r.type for r in results]), Region(block))
        main.attributes["vision.input_names"] = ArrayAttr([StringAttr(vi.name) for vi in self.inputs])
        main.attributes["vision.output_names"] = ArrayAttr([StringAttr(n) for n in all_names])
        main.attributes["vision.input_dtypes"] = ArrayAttr([StringAttr(str(d)) for d in in_dtypes])
        main.attributes["vision.output_dtypes"] = ArrayAttr([StringAttr(str(d)) for d in all_dtypes])
        if any(c >= 0 for c in counts):
            main.attributes["vision.output_counts"] = DenseArrayBase.from_list(
                i64, counts + [-1] * (len(results) - len(counts)))
        module = ModuleOp([main])
        module.verify()
        return ImportedModel(
            module=module,
            weights=weights,
            input_names=[vi.name for vi in self.inputs],
            output_names=out_names,
            input_shapes=list(shapes),
            output_shapes=[t.shape for t in out_tensors],
            input_dtypes=list(in_dtypes),  # type: ignore[arg-type]
            output_dtypes=out_dtypes,
        )

    def convert(self, ctx: ImportContext, node: Node) -> Sequence[Tensor | None]:
        const_names = {n for n, t in zip(node.proto.input, node.inputs, strict=True) if n and t is not None and t.is_const}
        if is_foldable(node.proto, const_names):
            arrays = fold(node, self.opsets)
            return [Tensor.constant(a, name) for a, name in zip(arrays, node.proto.output, strict=False)]
        counted = [n for n, t in zip(node.proto.input, node.inputs, strict=True) if t is not None and t.count is not None]
        if counted:
            raise Unsupported(f"input '{counted[0]}' has a data-dependent number of rows (a NonMaxSuppression "
                              "output); ops that read it are not supported, only graph outputs")
        conv = self.converters[node.op_type]
        outs = list(conv.fn(ctx, node))
        for k in conv.const_outputs:
            if k < len(outs) and outs[k] is not None:
                assert outs[k].is_const  # type: ignore[union-attr]
        return outs


def import_model(
    model: ModelProto | str | os.PathLike | bytes,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    label: str | None = None,
) -> ImportedModel:
    """Import an ONNX model (proto, path or serialized bytes) into the vision dialect;
    ``label`` names a proto in messages (the file it was read from)."""
    proto, read_label = load_model(model)
    label = label or read_label
    _validate(proto, label)
    return _Importer(proto, label).run(input_shapes)


def unsupported_ops(model: ModelProto | str | os.PathLike | bytes) -> list[str]:
    """The problems `import_model` would report before building IR (unsupported ops, inputs that
    must be constants, unsupported attributes or element types); empty when the model is
    supported. Shape problems, which depend on input shapes, are not checked here."""
    proto, label = load_model(model)
    _validate(proto, label)
    importer = _Importer(proto, label)
    return importer.problems(importer.sorted_nodes())
