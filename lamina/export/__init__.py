"""Export a trained model for serving: ``model.export(path, format=...)``.

Formats: ``"tf_saved_model"`` (the default, as in Keras; needs ``lamina[tensorflow]``),
``"onnx"`` (needs ``lamina[onnx]``) and ``"stablehlo"`` (JAX only; reload with
``lm.export.load_stablehlo``). Each runs the model with ``training=False`` on its current
weights, with the batch axis free.
"""

from __future__ import annotations

import os

from lamina.export.signature import ArgSpec, inference_function
from lamina.export.stablehlo import StableHLOFunction, load_stablehlo

FORMATS = ("tf_saved_model", "onnx", "stablehlo")

__all__ = ["ArgSpec", "StableHLOFunction", "export_model", "inference_function", "load_stablehlo"]


def export_model(model, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs) -> None:
    """``model.export``: write ``model``'s inference function to ``filepath`` in ``format``.

    ``input_signature``: a structure (as the model takes its inputs) of ``lm.Input`` tensors,
    ``jax.ShapeDtypeStruct`` s, ``tf.TensorSpec`` s or example arrays; by default the model's
    own input shapes with a free batch axis. ``verbose`` (default ``True``, as Keras) prints
    where the artifact went. Format options: ``opset_version`` (ONNX), ``platforms``
    (StableHLO, e.g. ``("cpu", "cuda")``). An existing file or folder at ``filepath`` is
    replaced (as Keras does), atomically.

    Example:
        >>> import os, tempfile, lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> export_model(model, os.path.join(tempfile.mkdtemp(), "m.stablehlo"), format="stablehlo", verbose=False)
    """
    if format not in FORMATS:
        raise ValueError(f"Unrecognized export format={format!r} for model '{model.name}'. "
                         f"Supported formats are: {list(FORMATS)}.")
    allowed = {"onnx": {"opset_version"}, "stablehlo": {"platforms"}, "tf_saved_model": set()}[format]
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"model.export(format={format!r}) got unexpected arguments {unknown}; "
                        f"it accepts {sorted(allowed) or 'none beyond filepath, format, verbose, input_signature'}.")
    path = os.fspath(filepath)
    if format != "tf_saved_model" and os.path.isdir(path):
        raise IsADirectoryError(f"Cannot export model '{model.name}' to {path!r}: it is a folder; "
                                f"format={format!r} writes one file.")
    inference = inference_function(model, input_signature)
    if format == "stablehlo":
        from lamina.export.stablehlo import export_stablehlo

        export_stablehlo(inference, path, platforms=kwargs.get("platforms"))
    elif format == "onnx":
        from lamina.export.onnx_format import export_onnx

        export_onnx(model, inference, path, opset_version=kwargs.get("opset_version"))
    else:
        from lamina.export.saved_model import export_saved_model

        export_saved_model(model, inference, path)
    if verbose is None or verbose:
        inputs = ", ".join(f"{s.name}: {s.dtype.name}{list(s.shape)}" for s in inference.specs)
        print(f"Saved artifact at '{path}' (format={format!r}; inputs {inputs}).")
