"""Quantization (``lm.quantizers``): Keras 3's quantizers, quantization configs and the
int8/int4 arithmetic that ``model.quantize("int8")`` and ``model.quantize("int4")`` use.
See docs/quantization.md.
"""

from lamina.quantizers.config import (
    QUANTIZATION_MODES,
    Int4QuantizationConfig,
    Int8QuantizationConfig,
    QuantizationConfig,
)
from lamina.quantizers.quantizers import (
    AbsMaxQuantizer,
    Quantizer,
    abs_max_quantize,
    abs_max_quantize_grouped_with_zero_point,
    compute_float8_amax_history,
    compute_float8_scale,
    dequantize_with_sz_map,
    pack_int4,
    quantize_and_dequantize,
    unpack_int4,
)
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import object_family

_CLASSES = (Quantizer, AbsMaxQuantizer, QuantizationConfig, Int8QuantizationConfig, Int4QuantizationConfig)
_ALIASES = {**{cls.__name__: cls for cls in _CLASSES}, "quantizer": Quantizer, "abs_max_quantizer": AbsMaxQuantizer,
            "int8_quantization_config": Int8QuantizationConfig, "int4_quantization_config": Int4QuantizationConfig}
for _cls in _CLASSES:
    register_builtin(_cls)

# The family holds the configs too (Keras files name both under "keras.quantizers"), so no base class.
serialize, deserialize, _get = object_family("quantizer", _ALIASES, module="lamina.quantizers")


def get(identifier):
    """A quantizer or quantization config from ``None``, an object, a class (instantiated), a
    name (``"AbsMaxQuantizer"``, ``"abs_max_quantizer"``) or a config dict.

    Example:
        >>> import lamina as lm
        >>> lm.quantizers.get("abs_max_quantizer").value_range
        (-127, 127)
    """
    if isinstance(identifier, type) and identifier in _CLASSES:
        return identifier()
    found = _get(identifier)
    return found() if isinstance(found, type) else found

__all__ = ["AbsMaxQuantizer", "Int4QuantizationConfig", "Int8QuantizationConfig",
           "QuantizationConfig", "Quantizer", "abs_max_quantize", "abs_max_quantize_grouped_with_zero_point",
           "compute_float8_amax_history", "compute_float8_scale", "dequantize_with_sz_map", "deserialize", "get",
           "pack_int4", "quantize_and_dequantize", "serialize", "unpack_int4"]
