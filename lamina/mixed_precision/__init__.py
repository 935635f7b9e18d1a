"""Mixed precision (``lm.mixed_precision``): dtype policies for layers.

``set_dtype_policy("mixed_bfloat16")`` makes the layers built afterwards keep float32 weights
and compute in bfloat16; ``dtype=`` on a layer chooses per layer. Softmax, normalization
statistics, losses and metrics stay in float32; under ``"mixed_float16"`` ``compile`` wraps
the optimizer in ``lm.optimizers.LossScaleOptimizer`` (also exported here, as in Keras). See
docs/guide/mixed-precision.md.
"""

from lamina.mixed_precision.policy import (
    DTypePolicy,
    dtype_policy,
    get,
    global_policy,
    serialize,
    set_dtype_policy,
    set_global_policy,
)
from lamina.mixed_precision.quantized import Int4DTypePolicy, QuantizedDTypePolicy
from lamina.optimizers.loss_scale_optimizer import LossScaleOptimizer
from lamina.saving.object_registry import register_builtin

Policy = DTypePolicy  # Keras's legacy alias (keras.mixed_precision.Policy)
# Configs name a layer's policy by class ({"class_name": "DTypePolicy", ...}), as Keras's do.
register_builtin(DTypePolicy, "FloatDTypePolicy")

__all__ = ["DTypePolicy", "Int4DTypePolicy", "LossScaleOptimizer", "Policy", "QuantizedDTypePolicy", "dtype_policy", "get", "global_policy", "serialize",
           "set_dtype_policy", "set_global_policy"]
