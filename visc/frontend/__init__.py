"""ONNX frontend: `import_model` turns an ONNX model into the vision dialect (stage 1)."""

from visc.frontend.onnx import ImportedModel, import_model, load_model

__all__ = ["ImportedModel", "import_model", "load_model"]
