"""Export a trained run: merged safetensors, adapter only, ONNX, int8 ONNX, GGUF; each format
is loaded back and checked against the run before it is put in place (see export.py)."""

from tunelab.export.export import FORMATS, export_run, parse_formats
from tunelab.export.verify import ExportError

__all__ = ["FORMATS", "ExportError", "export_run", "parse_formats"]
