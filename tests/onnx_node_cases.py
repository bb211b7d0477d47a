"""The ONNX backend node test cases for the ops visc supports, generated from the installed
`onnx` package, with the documented reasons for every case visc deliberately skips."""

from __future__ import annotations

import functools
import re
import warnings

import onnx
from onnx.backend.test.case.node import collect_testcases

SUPPORTED_OPS = frozenset("""
Conv ConvTranspose BatchNormalization Relu LeakyRelu PRelu Sigmoid Tanh HardSigmoid HardSwish Clip Elu
Selu Softplus Erf Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Sum Max Min Mean MaxPool AveragePool
GlobalAveragePool GlobalMaxPool LRN Gemm MatMul Flatten Reshape Transpose Concat Split Slice Squeeze
Unsqueeze Pad Resize Upsample Softmax LogSoftmax ReduceMean ReduceSum ReduceMax ReduceMin Dropout
Identity Constant ConstantOfShape Shape Gather Cast Range Expand Equal Where
TopK ArgMax ArgMin CumSum NonMaxSuppression RoiAlign
Acos Acosh And Asin Asinh Atan Atanh CastLike Ceil Celu Cos Cosh DepthToSpace Floor Gelu GlobalLpPool
Greater GreaterOrEqual IsInf IsNaN Less LessOrEqual LpPool Mish Mod Not Or Reciprocal ReduceL1 ReduceL2
ReduceLogSum ReduceLogSumExp ReduceProd ReduceSumSquare Round Shrink Sign Sin Sinh Softsign SpaceToDepth
Swish Tan ThresholdedRelu Tile Xor LayerNormalization InstanceNormalization GroupNormalization Einsum
GatherElements GatherND ScatterND
""".split())

# Cases outside what a CNN inference compiler on OpenCL 1.2 float/int tensors does, with why.
SKIPS: tuple[tuple[str, str], ...] = (
    (r"FLOAT8|FLOAT4|INT4|UINT4|INT2|UINT2|E4M3|E5M2|E8M0",
     "8/4/2-bit float and integer types have no OpenCL C 1.2 type"),
    (r"BFLOAT16|bf16", "bfloat16 has no OpenCL C 1.2 type"),
    (r"(attention_4d|causal_conv_with_state)\w*_fp16_expanded",
     "float16 MatMul/Conv/Softmax kernels accumulate in float16 (onnxruntime: float32), 2-7 float16 ulps "
     "off after these graphs' chains of them, past the cases' rtol=1e-3"),
    (r"STRING|_string", "string tensors are not numeric data"),
    (r"identity_sequence|identity_opt|optional", "sequence/optional types are not tensors"),
    (r"training_mode|_training", "training-mode BatchNormalization/Dropout (random masks, running stats) is not inference"),
    (r"antialias", "Resize antialias (a downsampling filter for image preprocessing) is not implemented"),
    (r"maxpool_with_argmax", "MaxPool's second output (Indices) is not implemented"),
    (r"convtranspose_3d", "3-D ConvTranspose is not implemented (visc's convolutions are 2-D)"),
)

# Cases whose stored expected outputs follow onnx's Python reference where it departs from the
# ONNX spec and onnxruntime (align_corners divides by the integer output length there):
# these compare with onnxruntime on the same inputs.
ORT_REFERENCE = frozenset({
    "test_resize_downsample_scales_linear_align_corners",
    "test_resize_downsample_scales_cubic_align_corners",
})


def skip_reason(case_name: str) -> str | None:
    for pattern, reason in SKIPS:
        if re.search(pattern, case_name, re.IGNORECASE):
            return reason
    return None


@functools.cache
def supported_cases() -> tuple:
    """Every node test case whose graph uses only supported ops, sorted by name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases("")
    picked = []
    for case in cases:
        model = case.model
        if model is None or not model.graph.node:
            continue
        if all(node.op_type in SUPPORTED_OPS for node in model.graph.node):
            picked.append(case)
    return tuple(sorted(picked, key=lambda c: c.name))


def case_inputs(case) -> list[tuple[list, list]]:
    """(inputs, expected outputs) per data set, as numpy arrays."""
    from onnx import numpy_helper

    sets = []
    for inputs, outputs in case.data_sets:
        sets.append((list(inputs), list(outputs)))
    del numpy_helper
    return sets


__all__ = ["SUPPORTED_OPS", "SKIPS", "ORT_REFERENCE", "skip_reason", "supported_cases", "case_inputs", "onnx"]
