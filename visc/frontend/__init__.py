"""ONNX frontend: `import_model` turns an ONNX model into the vision dialect (stage 1).

Names load lazily so that `visc.frontend.dtypes` & co. do not pull in the whole importer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ImportedModel", "import_model", "load_model", "unsupported_ops"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from visc.frontend import onnx as importer

        return getattr(importer, name)
    raise AttributeError(f"module 'visc.frontend' has no attribute {name!r}")
