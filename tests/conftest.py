"""Generic test helpers: a seeded rng, the model-zoo files shipped with onnx, tiny ONNX
model building, onnxruntime as the reference runtime and a local Ray cluster."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from visc.tools.ray_cluster import local_ray_cluster, session_token

# The compile cache of this test process (and the commands it starts): a fresh folder, so no
# test reads what another run left in ~/.cache or fills it. Set after `import visc` above,
# which finds the PoCL copy (docs/architecture.md) in the user's cache folder as usual.
_CACHE_DIR = tempfile.mkdtemp(prefix="visc-test-cache-")
os.environ["VISC_CACHE_DIR"] = _CACHE_DIR
os.environ.pop("VISC_CACHE", None)
atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
LIGHT_MODELS = (
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
)


def light_model_path(name: str) -> str:
    """Path of `onnx/backend/test/data/light/light_<name>.onnx`."""
    path = LIGHT_DIR / f"light_{name}.onnx"
    if not path.exists():
        pytest.skip(f"{path} is not installed")
    return str(path)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Mapping[str, tuple[Sequence[int | str], type | np.dtype]],
    outputs: Sequence[str],
    initializers: Mapping[str, np.ndarray] | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    """A one-graph model; `inputs` maps names to (shape, numpy dtype); output types are inferred."""
    ins = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), list(shape))
        for n, (shape, dt) in inputs.items()
    ]
    outs = [helper.make_empty_tensor_value_info(n) for n in outputs]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in (initializers or {}).items()]
    graph = helper.make_graph(list(nodes), "test", ins, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)  # what onnxruntime reads
    # output types come from onnx's shape inference (onnxruntime needs them)
    model = onnx.shape_inference.infer_shapes(model)
    for out in model.graph.output:
        if not out.type.HasField("tensor_type"):
            out.CopyFrom(helper.make_tensor_value_info(out.name, onnx.TensorProto.FLOAT, None))
    return model


def run_onnxruntime(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(feeds))


# The Ray test cluster's token, in this process's environment before any test module imports
# Ray (Ray reads it once, at import), so in-process drivers can connect to `ray_cluster`.
RAY_TOKEN = session_token()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The address of a two-node Ray cluster on this machine (visc/tools/ray_cluster.py): the
    head and a node with the custom resource ``edge1``, 1 CPU each, with this session's token
    (already in os.environ, so drivers in this process and its subprocesses connect)."""
    pytest.importorskip("ray", reason='Ray is not installed (pip install "visc[ray]")')
    with local_ray_cluster(RAY_TOKEN) as (address, _env):
        yield address
