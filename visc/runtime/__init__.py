"""visc.runtime: what a deployed model needs, and nothing of the compiler.

The plan (`plan`), the device interface and executor factory (`device`), one executor per
device (`opencl`, `cuda`, `cpu` with `cpu_workers`, and `mixed` over two of them; `host_executor`
with `host_graph` and `host_ops` for a model's data-dependent part, which imports onnx, for
`onnx.reference`, only when one is built), device selection (`devices`) and the artifact file
(`artifact`). Modules here import numpy and a device binding (pyopencl, pycuda, llvmlite)
only, never xDSL or `visc.passes`,
`visc.dialects`, `visc.frontend`, `visc.backends`, `visc.compiler` or `visc.tuner`
(tests/test_runtime_layer.py checks it).
"""
