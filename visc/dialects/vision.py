"""The `vision` dialect: CNN operators on tensors, and after bufferization on memrefs.

Every compute op follows one destination-passing convention so that graph passes,
bufferization and lowering treat all ops alike:

* ``ins``   -- the op's data operands, in the order its docstring gives;
* ``fuse``  -- extra operands read by the fused elementwise ``body`` region
  (conv2d/matmul epilogues); empty for most ops;
* ``outs``  -- destination memrefs, present only after bufferization;
* results   -- tensors before bufferization; none after (except the view op `reshape`).

The custom syntax mirrors that split:

    %y = vision.conv2d ins(%x, %w, %b : tensor<..>, tensor<..>, tensor<..>)
                       fuse(%skip : tensor<..>) {strides = array<i64: 1, 1>, ...}
                       body {
                       ^bb0(%acc: f32, %s: f32):
                         %0 = arith.addf %acc, %s : f32
                         vision.yield %0 : f32
                       } -> tensor<..>
    vision.conv2d ins(%x, %w : memref<..>, memref<..>) outs(%y : memref<..>) {...}

Weights are never printed: ``vision.weight @name`` refers to the weight store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    AnyFloat,
    DenseArrayBase,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ShapedType,
    StringAttr,
    TensorType,
    f64,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, Region, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import IsTerminator, Pure
from xdsl.utils.exceptions import VerifyException

# --------------------------------------------------------------------------- attributes


@irdl_attr_definition
class ScheduleAttr(ParametrizedAttribute):
    """How one kernel-producing op is tiled and mapped: the only home of heuristics.

    ``params`` holds integer knobs (``wg``: work-group size, ``tile_*``: per-thread register
    tiles, ``vec``: vector width, ``unroll``, ``local``: stage tiles in local memory ...).
    Each op's lowering documents which keys it reads; absent keys take the lowering's
    neutral value (1 / off). The printed attribute is what a tuning record stores.
    """

    name = "vision.schedule"
    params: DictionaryAttr

    def __init__(self, params: dict[str, int] | DictionaryAttr):
        if not isinstance(params, DictionaryAttr):
            params = DictionaryAttr({k: IntegerAttr(int(v), i64) for k, v in sorted(params.items())})
        super().__init__(params)

    def get(self, key: str, default: int) -> int:
        attr = self.params.data.get(key)
        if attr is None:
            return default
        assert isinstance(attr, IntegerAttr)
        return int(attr.value.data)

    def as_dict(self) -> dict[str, int]:
        return {k: int(v.value.data) for k, v in self.params.data.items()}  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- helpers


def ints(values: Sequence[int]) -> DenseArrayBase:
    """An ``array<i64: ...>`` attribute."""
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def floats(values: Sequence[float]) -> DenseArrayBase:
    """An ``array<f64: ...>`` attribute."""
    return DenseArrayBase.from_list(f64, [float(v) for v in values])


def get_ints(op: Operation, key: str) -> tuple[int, ...]:
    attr = op.attributes[key]
    assert isinstance(attr, DenseArrayBase)
    return tuple(int(v) for v in attr.get_values())


def get_floats(op: Operation, key: str) -> tuple[float, ...]:
    attr = op.attributes[key]
    assert isinstance(attr, DenseArrayBase)
    return tuple(float(v) for v in attr.get_values())


def get_int(op: Operation, key: str, default: int | None = None) -> int:
    attr = op.attributes.get(key)
    if attr is None:
        if default is None:
            raise KeyError(f"{op.name} has no attribute {key}")
        return default
    assert isinstance(attr, IntegerAttr)
    return int(attr.value.data)


def get_float(op: Operation, key: str, default: float | None = None) -> float:
    attr = op.attributes.get(key)
    if attr is None:
        if default is None:
            raise KeyError(f"{op.name} has no attribute {key}")
        return default
    assert isinstance(attr, FloatAttr)
    return float(attr.value.data)


def get_str(op: Operation, key: str, default: str | None = None) -> str:
    attr = op.attributes.get(key)
    if attr is None:
        if default is None:
            raise KeyError(f"{op.name} has no attribute {key}")
        return default
    assert isinstance(attr, StringAttr)
    return attr.data


def shape_of(value: SSAValue) -> tuple[int, ...]:
    typ = value.type
    assert isinstance(typ, ShapedType)
    return tuple(typ.get_shape())


def element_type_of(value: SSAValue) -> Attribute:
    typ = value.type
    assert isinstance(typ, TensorType | MemRefType)
    return typ.element_type


def with_shape(like: Attribute, shape: Sequence[int], element_type: Attribute | None = None) -> Attribute:
    """A tensor or memref type like ``like`` with a new shape (and element type)."""
    assert isinstance(like, TensorType | MemRefType)
    elt = element_type if element_type is not None else like.element_type
    if isinstance(like, TensorType):
        return TensorType(elt, list(shape))
    return MemRefType(elt, list(shape))


def _check(cond: bool, op: Operation, msg: str) -> None:
    if not cond:
        node = op.attributes.get("onnx_node")
        where = f" (ONNX node '{node.data}')" if isinstance(node, StringAttr) else ""
        raise VerifyException(f"{op.name}{where}: {msg}")


def conv_out_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int, dilation: int, ceil: bool = False) -> int:
    eff = (kernel - 1) * dilation + 1
    span = size + pad_lo + pad_hi - eff
    if ceil:
        out = -(-span // stride) + 1
        # the last window must start inside the (left-padded) input
        if (out - 1) * stride >= size + pad_lo:
            out -= 1
        return out
    return span // stride + 1


# --------------------------------------------------------------------------- base op


class VisionOp(IRDLOperation):
    """Common structure and syntax of all vision compute ops (see module docstring)."""

    ins = var_operand_def()
    fuse = var_operand_def()
    outs = var_operand_def()
    res = var_result_def()
    body = region_def()

    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    # The number of `ins` the op accepts, as (min, max); max None = variadic.
    NUM_INS: ClassVar[tuple[int, int | None]] = (1, 1)
    # Whether a body region is meaningful (map) or allowed (epilogue ops).
    HAS_BODY: ClassVar[bool] = False
    # Ops that produce views instead of writing a destination (reshape).
    IS_VIEW: ClassVar[bool] = False

    def __init__(
        self,
        ins: Sequence[SSAValue | Operation],
        result_types: Sequence[Attribute] = (),
        attributes: dict[str, Attribute] | None = None,
        *,
        fuse: Sequence[SSAValue | Operation] = (),
        outs: Sequence[SSAValue | Operation] = (),
        body: Region | None = None,
    ):
        super().__init__(
            operands=[ins, fuse, outs],
            result_types=[list(result_types)],
            attributes=attributes or {},
            regions=[body if body is not None else Region()],
        )

    # -- convenience -------------------------------------------------------------------

    @property
    def is_bufferized(self) -> bool:
        return len(self.outs) > 0 or (self.IS_VIEW and isinstance(self.res[0].type, MemRefType))

    @property
    def dests(self) -> tuple[SSAValue, ...]:
        """The values holding the op's outputs: results on tensors, outs on memrefs."""
        return tuple(self.outs) if self.outs else tuple(self.res)

    @property
    def out_types(self) -> list[Attribute]:
        return [v.type for v in self.dests]

    # -- verification ------------------------------------------------------------------

    def verify_(self) -> None:
        lo, hi = self.NUM_INS
        _check(len(self.ins) >= lo and (hi is None or len(self.ins) <= hi), self,
               f"expects {lo}..{hi if hi is not None else 'n'} ins, got {len(self.ins)}")
        if self.IS_VIEW:
            _check(len(self.res) == 1 and not self.outs, self, "a view op has one result and no outs")
        else:
            _check(bool(self.outs) != bool(self.res), self, "needs either results (tensors) or outs (memrefs), not both")
        tensor_mode = bool(self.res) and isinstance(self.res[0].type, TensorType)
        for v in [*self.ins, *self.fuse, *self.dests]:
            want = TensorType if tensor_mode else MemRefType
            _check(isinstance(v.type, want), self,
                   f"operands must all be {'tensors' if tensor_mode else 'memrefs'}, got {v.type}")
        if self.body.blocks:
            _check(self.HAS_BODY, self, "this op takes no body region")
            block = self.body.block
            _check(isinstance(block.last_op, YieldOp), self, "body must end with vision.yield")
        elif type(self).needs_body():
            _check(False, self, "this op needs a body region")
        self.verify_semantics()

    @classmethod
    def needs_body(cls) -> bool:
        return False

    def verify_semantics(self) -> None:
        """Op-specific checks of attributes and shapes."""

    # -- syntax ------------------------------------------------------------------------

    def print(self, printer: Printer) -> None:
        def group(keyword: str, values: Sequence[SSAValue]) -> None:
            printer.print_string(f" {keyword}(")
            printer.print_list(values, printer.print_ssa_value)
            printer.print_string(" : ")
            printer.print_list([v.type for v in values], printer.print_attribute)
            printer.print_string(")")

        group("ins", self.ins)
        if self.fuse:
            group("fuse", self.fuse)
        if self.outs:
            group("outs", self.outs)
        if self.attributes:
            printer.print_op_attributes(self.attributes)
        if self.body.blocks:
            printer.print_string(" body ")
            printer.print_region(self.body, print_entry_block_args=True, print_empty_block=True)
        if self.res:
            printer.print_string(" -> ")
            printer.print_list([r.type for r in self.res], printer.print_attribute)

    @classmethod
    def parse(cls, parser: Parser) -> VisionOp:
        def group(keyword: str) -> list[SSAValue]:
            if parser.parse_optional_keyword(keyword) is None:
                return []
            parser.parse_punctuation("(")
            names = parser.parse_comma_separated_list(parser.Delimiter.NONE, parser.parse_unresolved_operand)
            parser.parse_punctuation(":")
            types = parser.parse_comma_separated_list(parser.Delimiter.NONE, parser.parse_type)
            parser.parse_punctuation(")")
            if len(names) != len(types):
                parser.raise_error(f"{keyword}: {len(names)} operands but {len(types)} types")
            return [parser.resolve_operand(n, t) for n, t in zip(names, types, strict=True)]

        ins = group("ins")
        fuse = group("fuse")
        outs = group("outs")
        attrs = parser.parse_optional_attr_dict()
        body = None
        if parser.parse_optional_keyword("body") is not None:
            body = parser.parse_region()
        result_types: list[Attribute] = []
        if parser.parse_optional_punctuation("->") is not None:
            result_types = parser.parse_comma_separated_list(parser.Delimiter.NONE, parser.parse_type)
        return cls(ins, result_types, attrs, fuse=fuse, outs=outs, body=body)


class _EpilogueOp(VisionOp):
    """Ops whose accumulator can feed a fused elementwise epilogue.

    The body's block arguments are (acc, one scalar per ``fuse`` operand, read at the
    output element's index with broadcasting); it yields the value stored.
    """

    HAS_BODY: ClassVar[bool] = True


# --------------------------------------------------------------------------- ops


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Terminates a vision body region with the scalar value(s) it computes."""

    name = "vision.yield"
    values = var_operand_def()
    traits = traits_def(IsTerminator(), Pure())

    assembly_format = "$values attr-dict `:` type($values)"

    def __init__(self, *values: SSAValue | Operation):
        super().__init__(operands=[list(values)])


@irdl_op_definition
class WeightOp(IRDLOperation):
    """A constant tensor held in the weight store under ``name``; never printed inline."""

    name = "vision.weight"
    sym = prop_def(StringAttr, prop_name="name")
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, name: str, type_: Attribute):
        super().__init__(properties={"name": StringAttr(name)}, result_types=[type_])

    @property
    def weight_name(self) -> str:
        return self.sym.data

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym.data)
        if self.attributes:
            printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> WeightOp:
        name = parser.parse_symbol_name().data
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        op = cls(name, parser.parse_type())
        op.attributes.update(attrs)
        return op

    def verify_(self) -> None:
        _check(isinstance(self.result.type, TensorType | MemRefType), self, "weights are tensors or memrefs")


@irdl_op_definition
class BufferOp(IRDLOperation):
    """An intermediate's slot in the static arena: ``offset`` bytes from the arena base."""

    name = "vision.buffer"
    offset = prop_def(IntegerAttr)
    result = result_def(MemRefType)

    def __init__(self, offset: int, type_: MemRefType):
        super().__init__(properties={"offset": IntegerAttr(offset, i64)}, result_types=[type_])

    def print(self, printer: Printer) -> None:
        printer.print_string(f" offset {self.byte_offset}")
        if self.attributes:
            printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> BufferOp:
        parser.parse_keyword("offset")
        offset = parser.parse_integer()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        type_ = parser.parse_type()
        if not isinstance(type_, MemRefType):
            parser.raise_error("vision.buffer needs a memref type")
        op = cls(offset, type_)
        op.attributes.update(attrs)
        return op

    @property
    def byte_offset(self) -> int:
        return int(self.offset.value.data)


STATUS_TYPE = MemRefType(i64, [2])


@irdl_op_definition
class StatusOp(IRDLOperation):
    """A run-time check's status word, a buffer of its own beside the arena: ``[flag, value]``
    as i64, zero until a kernel finds ``message`` violated (an index out of range), when it
    stores 1 and the offending value. The runtime reads it after every run and raises,
    naming the op's ONNX node, instead of returning what a clamped or stray access gave."""

    name = "vision.status"
    message = prop_def(StringAttr)
    result = result_def(MemRefType)

    def __init__(self, message: str):
        super().__init__(properties={"message": StringAttr(message)}, result_types=[STATUS_TYPE])

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_string_literal(self.message.data)
        if self.attributes:
            printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> StatusOp:
        message = parser.parse_str_literal()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        type_ = parser.parse_type()
        if type_ != STATUS_TYPE:
            parser.raise_error(f"vision.status is a {STATUS_TYPE}")
        op = cls(message)
        op.attributes.update(attrs)
        return op

    def verify_(self) -> None:
        _check(self.result.type == STATUS_TYPE, self, f"the status word is a {STATUS_TYPE}")


@irdl_op_definition
class SubBufferOp(IRDLOperation):
    """``offset`` bytes into ``source``, seen as the result memref: how a producer writes
    straight into its slab of a concat's output (vision-concat-in-place). Unlike a reshape it
    covers only part of its source, so the source's lifetime spans every use of the slab."""

    name = "vision.subbuffer"
    source = operand_def(MemRefType)
    offset = prop_def(IntegerAttr)
    result = result_def(MemRefType)

    def __init__(self, source: SSAValue, offset: int, type_: MemRefType):
        super().__init__(operands=[source], properties={"offset": IntegerAttr(offset, i64)}, result_types=[type_])

    @property
    def byte_offset(self) -> int:
        return int(self.offset.value.data)

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.source)
        printer.print_string(f" offset {self.byte_offset}")
        if self.attributes:
            printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.source.type)
        printer.print_string(" -> ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> SubBufferOp:
        source = parser.parse_operand()
        parser.parse_keyword("offset")
        offset = parser.parse_integer()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        parser.parse_type()
        parser.parse_punctuation("->")
        type_ = parser.parse_type()
        if not isinstance(type_, MemRefType):
            parser.raise_error("vision.subbuffer needs a memref result type")
        op = cls(source, offset, type_)
        op.attributes.update(attrs)
        return op

    def verify_(self) -> None:
        from visc.passes.graph.helpers import byte_size  # the dialect is imported by helpers

        src, res = byte_size(self.source.type), byte_size(self.result.type)
        _check(self.byte_offset >= 0 and self.byte_offset + res <= src, self,
               f"bytes {self.byte_offset}..{self.byte_offset + res} leave the {src}-byte source")


@irdl_op_definition
class Conv2dOp(_EpilogueOp):
    """2-D convolution, NCHW. ins = (x, w[, b]); attrs strides, pads (top, left, bottom,
    right), dilations, groups; optional fused epilogue body."""

    name = "vision.conv2d"
    NUM_INS: ClassVar[tuple[int, int | None]] = (2, 3)

    def verify_semantics(self) -> None:
        x, packed = shape_of(self.ins[0]), shape_of(self.ins[1])
        (out,) = [shape_of(v) for v in self.dests]
        lanes = get_int(self, "packed_oc", 0)
        if lanes:
            _check(len(packed) == 5 and packed[4] == lanes, self,
                   f"packed_oc = {lanes} needs a weight of shape (O/{lanes}, KH, KW, C/groups, {lanes})")
        w = conv_weight_shape(self)
        _check(len(x) == 4 and len(w) == 4 and len(out) == 4, self, "x, w and output must be 4-D (NCHW, OIHW)")
        s, p, d = get_ints(self, "strides"), get_ints(self, "pads"), get_ints(self, "dilations")
        g = get_int(self, "groups")
        _check(len(s) == 2 and len(p) == 4 and len(d) == 2, self, "strides/dilations need 2 values, pads 4")
        _check(x[1] == w[1] * g, self, f"input channels {x[1]} != {w[1]} x groups {g}")
        _check(w[0] % g == 0 and out[1] == w[0], self, "output channels must equal the weight's O and divide by groups")
        for i in range(2):
            want = conv_out_size(x[2 + i], w[2 + i], s[i], p[i], p[i + 2], d[i])
            _check(out[2 + i] == want, self, f"spatial dim {i}: output {out[2 + i]}, expected {want}")
        if len(self.ins) == 3:
            _check(shape_of(self.ins[2]) == (w[0],), self, "bias must have shape (O,)")


def conv_weight_shape(op: VisionOp) -> tuple[int, ...]:
    """A conv2d weight's logical (O, C/groups, KH, KW), also when it is stored packed:
    ``packed_oc = V`` means the weight operand is (O/V, KH, KW, C/groups, V), so V output
    channels of one (c, kh, kw) tap are adjacent (one vector load; see vision-pack-weights)."""
    w = shape_of(op.ins[1])
    lanes = get_int(op, "packed_oc", 0)
    if lanes and len(w) == 5:
        return (w[0] * w[4], w[3], w[1], w[2])
    return w


@irdl_op_definition
class Conv2dTransposeOp(VisionOp):
    """Transposed 2-D convolution, NCHW. ins = (x, w[, b]) with w of shape (C, O/groups, kh, kw);
    attrs strides, pads (t, l, b, r), dilations, groups, output_padding; the output shape
    is the result type."""

    name = "vision.conv2d_transpose"
    NUM_INS: ClassVar[tuple[int, int | None]] = (2, 3)

    def verify_semantics(self) -> None:
        x, w = shape_of(self.ins[0]), shape_of(self.ins[1])
        (out,) = [shape_of(v) for v in self.dests]
        g = get_int(self, "groups")
        _check(len(x) == 4 and len(w) == 4 and len(out) == 4, self, "x, w and output must be 4-D")
        _check(x[1] == w[0] and out[1] == w[1] * g, self, "channel mismatch between x, w and output")


@irdl_op_definition
class Pool2dOp(VisionOp):
    """Windowed pooling. attrs kind ("max" | "avg"), kernel, strides, pads (t, l, b, r),
    dilations, ceil_mode (0/1, already reflected in the result shape), count_include_pad (0/1).
    Works on NC + any number of spatial dims given by the kernel's length."""

    name = "vision.pool2d"

    def verify_semantics(self) -> None:
        _check(get_str(self, "kind") in ("max", "avg", "lp"), self, "kind must be max, avg or lp")
        x = shape_of(self.ins[0])
        k = get_ints(self, "kernel")
        _check(len(x) == len(k) + 2, self, "kernel rank must be input rank - 2")


@irdl_op_definition
class GlobalPoolOp(VisionOp):
    """Pooling over all spatial dims to size 1. attr kind ("max" | "avg")."""

    name = "vision.global_pool"

    def verify_semantics(self) -> None:
        _check(get_str(self, "kind") in ("max", "avg"), self, "kind must be max or avg")
        x, (out,) = shape_of(self.ins[0]), [shape_of(v) for v in self.dests]
        _check(out == x[:2] + (1,) * (len(x) - 2), self, f"output shape {out} does not fit input {x}")


@irdl_op_definition
class BatchNormOp(VisionOp):
    """Inference batch normalization over dim 1. ins = (x, scale, bias, mean, var); attr epsilon."""

    name = "vision.batch_norm"
    NUM_INS: ClassVar[tuple[int, int | None]] = (5, 5)

    def verify_semantics(self) -> None:
        x = shape_of(self.ins[0])
        for v in self.ins[1:]:
            _check(shape_of(v) == (x[1],), self, "scale, bias, mean and var must have shape (C,)")


@irdl_op_definition
class LrnOp(VisionOp):
    """Local response normalization across channels. attrs size, alpha, beta, bias."""

    name = "vision.lrn"


@irdl_op_definition
class MatmulOp(_EpilogueOp):
    """Batched matrix product with numpy broadcasting of batch dims.
    ins = (a, b[, c]); y = alpha * op(a) @ op(b) + beta * c, where op transposes the last two
    dims when transpose_a / transpose_b is 1; c broadcasts to the output. Optional epilogue body."""

    name = "vision.matmul"
    NUM_INS: ClassVar[tuple[int, int | None]] = (2, 3)

    def verify_semantics(self) -> None:
        a, b = shape_of(self.ins[0]), shape_of(self.ins[1])
        (out,) = [shape_of(v) for v in self.dests]
        _check(len(a) >= 2 and len(b) >= 2, self, "operands must be at least 2-D (the importer promotes vectors)")
        ta, tb = get_int(self, "transpose_a", 0), get_int(self, "transpose_b", 0)
        m, k = (a[-1], a[-2]) if ta else (a[-2], a[-1])
        k2, n = (b[-1], b[-2]) if tb else (b[-2], b[-1])
        _check(k == k2, self, f"contraction sizes differ: {k} vs {k2}")
        _check(out[-2:] == (m, n), self, f"output {out} does not end in ({m}, {n})")


@irdl_op_definition
class MapOp(VisionOp):
    """Fused elementwise computation. ins broadcast (numpy rules) to the output shape; the body
    takes one scalar per input and yields the output scalar."""

    name = "vision.map"
    NUM_INS: ClassVar[tuple[int, int | None]] = (0, None)
    HAS_BODY: ClassVar[bool] = True

    @classmethod
    def needs_body(cls) -> bool:
        return True

    def verify_semantics(self) -> None:
        (out,) = [shape_of(v) for v in self.dests]
        for v in self.ins:
            s = shape_of(v)
            _check(len(s) <= len(out), self, f"input rank {len(s)} exceeds output rank {len(out)}")
            for a, o in zip(reversed(s), reversed(out), strict=False):
                _check(a in (1, o), self, f"input shape {s} does not broadcast to {out}")
        args = self.body.block.args
        _check(len(args) == len(self.ins), self, "body needs one argument per input")


@irdl_op_definition
class ConcatOp(VisionOp):
    """Concatenation along ``axis``."""

    name = "vision.concat"
    NUM_INS: ClassVar[tuple[int, int | None]] = (1, None)

    def verify_semantics(self) -> None:
        axis = get_int(self, "axis")
        (out,) = [shape_of(v) for v in self.dests]
        total = sum(shape_of(v)[axis] for v in self.ins)
        _check(total == out[axis], self, f"sizes along axis {axis} add to {total}, output has {out[axis]}")


@irdl_op_definition
class SplitOp(VisionOp):
    """Split along ``axis`` into the result/out shapes, in order."""

    name = "vision.split"

    def verify_semantics(self) -> None:
        axis = get_int(self, "axis")
        total = sum(shape_of(v)[axis] for v in self.dests)
        _check(total == shape_of(self.ins[0])[axis], self, "split sizes do not add up to the input")


@irdl_op_definition
class SliceOp(VisionOp):
    """Strided slice: out[i] = x[starts + i * steps] per dim (normalized: every dim listed,
    starts in range, steps non-zero); the output shape is the result type."""

    name = "vision.slice"

    def verify_semantics(self) -> None:
        x = shape_of(self.ins[0])
        _check(len(get_ints(self, "starts")) == len(x) == len(get_ints(self, "steps")), self,
               "starts/steps need one value per dim")


@irdl_op_definition
class PadOp(VisionOp):
    """Padding. attrs pads (all begins, then all ends; may be negative), mode
    ("constant" | "reflect" | "edge" | "wrap"), value (float, for constant)."""

    name = "vision.pad"

    def verify_semantics(self) -> None:
        x = shape_of(self.ins[0])
        p = get_ints(self, "pads")
        (out,) = [shape_of(v) for v in self.dests]
        _check(len(p) == 2 * len(x), self, "pads needs 2 values per dim")
        for i, n in enumerate(x):
            _check(out[i] == n + p[i] + p[i + len(x)], self, f"dim {i}: output size does not match pads")


@irdl_op_definition
class ReshapeOp(VisionOp):
    """Same elements, new shape (row-major). A view after bufferization: it writes nothing."""

    name = "vision.reshape"
    IS_VIEW: ClassVar[bool] = True

    def verify_semantics(self) -> None:
        import math

        _check(math.prod(shape_of(self.ins[0])) == math.prod(shape_of(self.res[0])), self,
               "reshape must keep the number of elements")


@irdl_op_definition
class TransposeOp(VisionOp):
    """Dimension permutation: out dim i is input dim perm[i]."""

    name = "vision.transpose"

    def verify_semantics(self) -> None:
        x, perm = shape_of(self.ins[0]), get_ints(self, "perm")
        (out,) = [shape_of(v) for v in self.dests]
        _check(sorted(perm) == list(range(len(x))), self, "perm must be a permutation")
        _check(out == tuple(x[p] for p in perm), self, "output shape does not match perm")


@irdl_op_definition
class ResizeOp(VisionOp):
    """Resize with ONNX semantics. attrs mode ("nearest" | "linear" | "cubic"), coord_mode
    (ONNX coordinate_transformation_mode), nearest_mode, scales (array<f64>, one per dim),
    roi (array<f64>, 2 per dim, for tf_crop_and_resize), cubic_coeff_a, exclude_outside,
    extrapolation_value. The output shape is the result type."""

    name = "vision.resize"

    def verify_semantics(self) -> None:
        _check(get_str(self, "mode") in ("nearest", "linear", "cubic"), self, "mode must be nearest, linear or cubic")
        _check(len(get_floats(self, "scales")) == len(shape_of(self.ins[0])), self, "scales needs one value per dim")


@irdl_op_definition
class SoftmaxOp(VisionOp):
    """Softmax along ``axis`` (ONNX-13 semantics; the importer rewrites older coercion)."""

    name = "vision.softmax"


@irdl_op_definition
class LogSoftmaxOp(VisionOp):
    """Log-softmax along ``axis``."""

    name = "vision.log_softmax"


@irdl_op_definition
class ReduceOp(VisionOp):
    """Reduction over ``axes``. attr kind ("sum" | "mean" | "max" | "min" | "prod" |
    "sum_square" | "l1" | "l2" | "log_sum" | "log_sum_exp"); the output keeps reduced dims
    as 1 or drops them, as its type says."""

    name = "vision.reduce"

    def verify_semantics(self) -> None:
        kinds = ("sum", "mean", "max", "min", "prod", "sum_square", "l1", "l2", "log_sum", "log_sum_exp")
        _check(get_str(self, "kind") in kinds, self, f"kind must be one of {kinds}")


@irdl_op_definition
class GatherOp(VisionOp):
    """numpy.take along ``axis``. ins = (data, indices); indices are integers, negative wrap."""

    name = "vision.gather"
    NUM_INS: ClassVar[tuple[int, int | None]] = (2, 2)


def _is_int(value: SSAValue) -> bool:
    return isinstance(element_type_of(value), IntegerType)


@irdl_op_definition
class GatherElementsOp(VisionOp):
    """ONNX GatherElements: out[i] = data[i with its ``axis`` coordinate replaced by
    indices[i]]. ins = (data, indices); the output has the indices' shape; negative wrap."""

    name = "vision.gather_elements"
    NUM_INS: ClassVar[tuple[int, int | None]] = (2, 2)

    def verify_semantics(self) -> None:
        data, idx = shape_of(self.ins[0]), shape_of(self.ins[1])
        (out,) = [shape_of(d) for d in self.dests]
        axis = get_int(self, "axis")
        _check(_is_int(self.ins[1]), self, "indices must be integers")
        _check(len(idx) == len(data) and 0 <= axis < max(len(data), 1), self,
               f"indices {idx} must have the rank of data {data}, and axis {axis} lie in it")
        _check(out == idx, self, f"output shape {out} must be the indices' shape {idx}")


@irdl_op_definition
class GatherNDOp(VisionOp):
    """ONNX GatherND: indices [..., k] address k leading dims of data after ``batch_dims``
    shared leading dims; each index tuple picks a slice. ins = (data, indices); negative wrap."""

    name = "vision.gather_nd"
    NUM_INS: ClassVar[tuple[int, int | None]] = (2, 2)

    def verify_semantics(self) -> None:
        data, idx = shape_of(self.ins[0]), shape_of(self.ins[1])
        (out,) = [shape_of(d) for d in self.dests]
        b = get_int(self, "batch_dims", 0)
        _check(_is_int(self.ins[1]), self, "indices must be integers")
        _check(len(idx) >= 1 and 0 <= b < min(len(idx), len(data) + 1) and b + idx[-1] <= len(data)
               and idx[:b] == data[:b], self, f"indices {idx} do not address data {data} with batch_dims {b}")
        want = idx[:-1] + data[b + idx[-1]:]
        _check(out == want, self, f"output shape {out}, expected {want}")


@irdl_op_definition
class ScatterNDOp(VisionOp):
    """ONNX ScatterND: a copy of data with the slices that indices [..., k] address replaced
    by (or, with ``reduction`` add | mul | max | min, combined with) updates, index tuples
    applied in order. ins = (data, indices, updates); negative indices wrap."""

    name = "vision.scatter_nd"
    NUM_INS: ClassVar[tuple[int, int | None]] = (3, 3)
    REDUCTIONS: ClassVar[tuple[str, ...]] = ("none", "add", "mul", "max", "min")

    def verify_semantics(self) -> None:
        data, idx, upd = (shape_of(v) for v in self.ins)
        (out,) = [shape_of(d) for d in self.dests]
        _check(get_str(self, "reduction", "none") in self.REDUCTIONS, self,
               f"reduction must be one of {self.REDUCTIONS}")
        _check(_is_int(self.ins[1]), self, "indices must be integers")
        _check(len(idx) >= 1 and idx[-1] <= len(data), self, f"indices {idx} address more dims than data {data} has")
        want = idx[:-1] + data[idx[-1]:]
        _check(upd == want, self, f"updates shape {upd}, expected {want}")
        _check(out == data, self, f"output shape {out} must be data's {data}")


# --------------------------------------------------------------------------- vision operators
# Sorting, selection and detection ops. Index results are i64, as in ONNX.


def _is_i64(value: SSAValue) -> bool:
    elt = element_type_of(value)
    return isinstance(elt, IntegerType) and elt.width.data == 64


def _check_axis(op: VisionOp, rank: int) -> int:
    axis = get_int(op, "axis")
    _check(0 <= axis < max(rank, 1), op, f"axis {axis} is out of range for rank {rank} (normalize negative axes)")
    return axis


@irdl_op_definition
class TopKOp(VisionOp):
    """The ``k`` largest (``largest`` = 1) or smallest elements along ``axis``, in order; equal
    values keep the lower index first (ONNX TopK). Results (values, indices: i64), of the
    input's shape with dim ``axis`` = ``k``."""

    name = "vision.topk"

    def verify_semantics(self) -> None:
        x = shape_of(self.ins[0])
        axis = _check_axis(self, len(x))
        k = get_int(self, "k")
        _check(len(self.dests) == 2, self, "needs two results (values, indices)")
        want = x[:axis] + (k,) + x[axis + 1:]
        _check(0 <= k <= x[axis], self, f"k = {k} is not in 0..{x[axis]}")
        for d in self.dests:
            _check(shape_of(d) == want, self, f"results must have shape {want}, got {shape_of(d)}")
        _check(_is_i64(self.dests[1]), self, "indices must be i64")


@irdl_op_definition
class SortOp(VisionOp):
    """Stable sort along ``axis``: results (values, indices: i64) of the input's shape, ascending
    or, with ``descending`` = 1, largest first; equal keys keep their index order."""

    name = "vision.sort"

    def verify_semantics(self) -> None:
        x = shape_of(self.ins[0])
        _check_axis(self, len(x))
        _check(len(self.dests) == 2, self, "needs two results (values, indices)")
        for d in self.dests:
            _check(shape_of(d) == x, self, f"results must have the input's shape {x}")
        _check(_is_i64(self.dests[1]), self, "indices must be i64")


class _ArgExtremeOp(VisionOp):
    """Shared checks of argmax / argmin."""

    def verify_semantics(self) -> None:
        x = shape_of(self.ins[0])
        axis = _check_axis(self, len(x))
        (out,) = [shape_of(d) for d in self.dests]
        kept, dropped = x[:axis] + (1,) + x[axis + 1:], x[:axis] + x[axis + 1:]
        _check(out in (kept, dropped), self, f"output shape {out} is neither {kept} nor {dropped}")
        _check(_is_i64(self.dests[0]), self, "the output must be i64")


@irdl_op_definition
class ArgMaxOp(_ArgExtremeOp):
    """Index (i64) of the largest element along ``axis``: the first one, or the last with
    ``select_last_index`` = 1. The output keeps ``axis`` as 1 or drops it, as its type says."""

    name = "vision.argmax"


@irdl_op_definition
class ArgMinOp(_ArgExtremeOp):
    """Index (i64) of the smallest element along ``axis`` (see vision.argmax)."""

    name = "vision.argmin"


@irdl_op_definition
class ScanOp(VisionOp):
    """Prefix sum along ``axis`` (ONNX CumSum): inclusive, or starting from 0 with
    ``exclusive`` = 1; ``reverse`` = 1 sums from the end. Same shape and type as the input."""

    name = "vision.scan"

    def verify_semantics(self) -> None:
        x = shape_of(self.ins[0])
        _check_axis(self, len(x))
        (out,) = [shape_of(d) for d in self.dests]
        _check(out == x, self, f"output shape {out} must equal the input's {x}")


@irdl_op_definition
class NmsOp(VisionOp):
    """ONNX NonMaxSuppression. ins = (boxes [B, N, 4], scores [B, C, N]); attrs
    center_point_box (0: corners y1, x1, y2, x2; 1: x_center, y_center, width, height),
    max_output_boxes_per_class, iou_threshold, score_threshold (absent: no threshold;
    else candidates need score > threshold). Results: selected (i64 [M, 3], M = B * C *
    min(max_output_boxes_per_class, N)): the (batch, class, box) rows in ONNX order, each class's
    boxes by decreasing score (ties: lower box first), then rows of -1; count (i64 [1]): the
    number of selected rows. The runtime trims selected to count rows."""

    name = "vision.nms"
    NUM_INS: ClassVar[tuple[int, int | None]] = (2, 2)

    def verify_semantics(self) -> None:
        boxes, scores = shape_of(self.ins[0]), shape_of(self.ins[1])
        _check(len(boxes) == 3 and boxes[2] == 4, self, f"boxes must be [B, N, 4], got {boxes}")
        _check(len(scores) == 3 and scores[0] == boxes[0] and scores[2] == boxes[1], self,
               f"scores must be [B, C, N] = [{boxes[0]}, C, {boxes[1]}], got {scores}")
        _check(get_int(self, "center_point_box", 0) in (0, 1), self, "center_point_box must be 0 or 1")
        _check(len(self.dests) == 2, self, "needs two results (selected, count)")
        per_class = min(max(get_int(self, "max_output_boxes_per_class"), 0), boxes[1])
        rows = boxes[0] * scores[1] * per_class
        _check(shape_of(self.dests[0]) == (rows, 3), self,
               f"selected must have shape ({rows}, 3), got {shape_of(self.dests[0])}")
        _check(shape_of(self.dests[1]) == (1,), self, "count must have shape (1,)")
        _check(_is_i64(self.dests[0]) and _is_i64(self.dests[1]), self, "selected and count must be i64")


@irdl_op_definition
class RoiAlignOp(VisionOp):
    """ONNX RoiAlign. ins = (x [N, C, H, W], rois [R, 4] as (x1, y1, x2, y2), batch_indices [R]
    integers); attrs mode ("avg" | "max"), coord_mode ("half_pixel" | "output_half_pixel"),
    sampling_ratio (samples per bin side; 0: ceil(roi size / output size)), spatial_scale.
    The output [R, C, output_height, output_width] is the result type."""

    name = "vision.roi_align"
    NUM_INS: ClassVar[tuple[int, int | None]] = (3, 3)

    def verify_semantics(self) -> None:
        x, rois, bi = (shape_of(v) for v in self.ins)
        (out,) = [shape_of(d) for d in self.dests]
        _check(get_str(self, "mode", "avg") in ("avg", "max"), self, "mode must be avg or max")
        _check(get_str(self, "coord_mode", "half_pixel") in ("half_pixel", "output_half_pixel"), self,
               "coord_mode must be half_pixel or output_half_pixel")
        _check(len(x) == 4, self, f"x must be [N, C, H, W], got {x}")
        _check(len(rois) == 2 and rois[1] == 4 and bi == (rois[0],), self,
               f"rois must be [R, 4] and batch_indices [R], got {rois} and {bi}")
        _check(len(out) == 4 and out[:2] == (rois[0], x[1]), self,
               f"output must be [{rois[0]}, {x[1]}, h, w], got {out}")


# --------------------------------------------------------------------------- row normalization
# LayerNormalization, GroupNormalization and InstanceNormalization: each row's mean and biased
# variance (two passes, in float32, or float64 for float64 data), then an affine map.


def _float_type(value: SSAValue) -> bool:
    return isinstance(element_type_of(value), AnyFloat)


@irdl_op_definition
class LayerNormOp(VisionOp):
    """Layer normalization over the dims ``axes`` (sorted; ONNX LayerNormalization normalizes
    the dims from its axis on): y = (x - mean) / sqrt(var + epsilon) * scale + bias, with the
    mean and biased variance over those dims. ins = (x, scale[, bias]), scale and bias
    broadcasting (numpy rules) to x. Results (y[, mean, inv_std_dev]): the statistics have x's
    shape with the normalized dims as 1 and a float type of their own (ONNX stash_type)."""

    name = "vision.layer_norm"
    NUM_INS: ClassVar[tuple[int, int | None]] = (2, 3)

    def verify_semantics(self) -> None:
        x = shape_of(self.ins[0])
        axes = get_ints(self, "axes")
        _check(len(axes) > 0 and list(axes) == sorted(set(axes)) and 0 <= axes[0] and axes[-1] < len(x), self,
               f"axes {list(axes)} must be sorted, distinct and within rank {len(x)}")
        for v in self.ins[1:]:
            s = shape_of(v)
            _check(len(s) <= len(x) and all(a in (1, b) for a, b in zip(reversed(s), reversed(x), strict=False)),
                   self, f"scale/bias shape {s} does not broadcast to the input {x}")
        _check(len(self.dests) in (1, 3), self, "needs one result (y) or three (y, mean, inv_std_dev)")
        _check(shape_of(self.dests[0]) == x, self, f"y must have the input's shape {x}")
        stats = tuple(1 if d in axes else n for d, n in enumerate(x))
        for d in self.dests[1:]:
            _check(shape_of(d) == stats, self, f"mean and inv_std_dev must have shape {stats}, got {shape_of(d)}")
        _check(all(_float_type(v) for v in [*self.ins, *self.dests]), self, "operands must be floating point")


@irdl_op_definition
class GroupNormOp(VisionOp):
    """Group normalization of (N, C, ...) data (ONNX GroupNormalization; InstanceNormalization
    is ``groups`` = C): the channels form ``groups`` consecutive groups, each (n, group) is
    normalized over its channels and all spatial dims, then y = normalized * scale[c] + bias[c].
    ins = (x, scale (C,), bias (C,)); attrs groups, epsilon."""

    name = "vision.group_norm"
    NUM_INS: ClassVar[tuple[int, int | None]] = (3, 3)

    def verify_semantics(self) -> None:
        x = shape_of(self.ins[0])
        _check(len(x) >= 2, self, f"input {x} needs a channel dim")
        g = get_int(self, "groups")
        _check(g >= 1 and x[1] % g == 0, self, f"{x[1]} channels do not split into {g} groups")
        for v in self.ins[1:]:
            _check(shape_of(v) == (x[1],), self, f"scale and bias must have shape ({x[1]},), got {shape_of(v)}")
        (out,) = [shape_of(d) for d in self.dests]
        _check(out == x, self, f"the output must have the input's shape {x}")
        _check(all(_float_type(v) for v in [*self.ins, *self.dests]), self, "operands must be floating point")


NORM_OPS: tuple[type[VisionOp], ...] = (LayerNormOp, GroupNormOp)


COMPUTE_OPS: tuple[type[VisionOp], ...] = (
    Conv2dOp,
    Conv2dTransposeOp,
    Pool2dOp,
    GlobalPoolOp,
    BatchNormOp,
    LrnOp,
    MatmulOp,
    MapOp,
    ConcatOp,
    SplitOp,
    SliceOp,
    PadOp,
    ReshapeOp,
    TransposeOp,
    ResizeOp,
    SoftmaxOp,
    LogSoftmaxOp,
    ReduceOp,
    GatherOp,
    GatherElementsOp,
    GatherNDOp,
    ScatterNDOp,
    TopKOp,
    SortOp,
    ArgMaxOp,
    ArgMinOp,
    ScanOp,
    NmsOp,
    RoiAlignOp,
    *NORM_OPS,
)

Vision = Dialect(
    "vision",
    [YieldOp, WeightOp, BufferOp, SubBufferOp, StatusOp, *COMPUTE_OPS],
    [ScheduleAttr],
)

__all__ = [
    "Vision",
    "VisionOp",
    "ScheduleAttr",
    "YieldOp",
    "WeightOp",
    "BufferOp",
    "SubBufferOp",
    "StatusOp",
    "STATUS_TYPE",
    "COMPUTE_OPS",
    *[c.__name__ for c in COMPUTE_OPS],
    "ints",
    "floats",
    "get_ints",
    "get_floats",
    "get_int",
    "get_float",
    "get_str",
    "shape_of",
    "element_type_of",
    "with_shape",
    "conv_out_size",
    "conv_weight_shape",
]
