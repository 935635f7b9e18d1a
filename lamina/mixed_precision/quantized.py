"""Quantized dtype policies: ``"int8_from_float32"``, ``"int4/128_from_mixed_bfloat16"``.

A quantized layer's policy names its quantization mode and the policy it was quantized from,
as Keras 3's ``QuantizedDTypePolicy`` and ``Int4DTypePolicy`` do: the float weights that are
left (a bias) and the computation keep the source policy's dtypes. A layer built under such a
policy (a quantized model rebuilt from its file) creates its quantized variables directly.
"""

from __future__ import annotations

from lamina.mixed_precision.policy import DTypePolicy, install_quantized_policies
from lamina.quantizers.config import Int4QuantizationConfig
from lamina.saving.object_registry import register_builtin

_MODES = ("int8", "float8", "int4", "gptq", "awq")  # Keras's QUANTIZATION_MODES


class QuantizedDTypePolicy(DTypePolicy):
    """The policy of a layer quantized with ``mode`` from the policy named ``source_name``
    (``None``: the global policy).

    Example:
        >>> import lamina as lm
        >>> policy = lm.mixed_precision.QuantizedDTypePolicy("int8", "float32")
        >>> policy.name, policy.quantization_mode, policy.compute_dtype, policy.get_config()
        ('int8_from_float32', 'int8', 'float32', {'mode': 'int8', 'source_name': 'float32'})
    """

    __slots__ = ("_quantization_mode", "_source_name")

    def __init__(self, mode, source_name=None):
        source = DTypePolicy(source_name)
        if mode not in _MODES:
            raise ValueError(f"QuantizedDTypePolicy: invalid quantization mode {mode!r}; expected one of {_MODES}.")
        if mode == "int8" and source.compute_dtype == "float16":
            raise ValueError("QuantizedDTypePolicy: mode 'int8' does not work well with compute_dtype 'float16'.")
        super().__init__(source.name)
        self._source_name = source.name
        self._quantization_mode = mode
        self._name = f"{mode}_from_{source.name}"

    @property
    def quantization_mode(self):
        """``"int8"``, ``"int4"``...: how the layer's kernel is stored."""
        return self._quantization_mode

    @property
    def source_name(self):
        """The name of the float policy the layer was quantized from."""
        return self._source_name

    def get_config(self):
        return {"mode": self._quantization_mode, "source_name": self._source_name}

    def quantization_config(self):
        """The config that quantizes as this policy says (``None``: the mode's default)."""
        return None

    def __repr__(self):
        return f'<{type(self).__name__} "{self._name}">'


class Int4DTypePolicy(QuantizedDTypePolicy):
    """An int4 policy with its block size: mode ``"int4/<block_size>"`` (``-1``: one scale per
    output channel; a positive size: groups of that many input rows).

    Example:
        >>> import lamina as lm
        >>> policy = lm.mixed_precision.Int4DTypePolicy("int4/128", "float32")
        >>> policy.name, policy.quantization_mode, policy.block_size
        ('int4/128_from_float32', 'int4', 128)
    """

    __slots__ = ("block_size",)

    def __init__(self, mode, source_name=None):
        base, _, size = str(mode).partition("/")
        try:
            block_size = int(size)
        except ValueError:
            block_size = None
        if base != "int4" or block_size is None or block_size < -1 or block_size == 0:
            raise ValueError(f"Int4DTypePolicy: mode must be 'int4/<block_size>' with block_size -1 or positive; "
                             f"received {mode!r}.")
        super().__init__("int4", source_name)
        self.block_size = block_size
        self._name = f"int4/{block_size}_from_{self._source_name}"

    def get_config(self):
        return {"mode": f"int4/{self.block_size}", "source_name": self._source_name}

    def quantization_config(self):
        """Keras's ``"int4/<block_size>"``: that block size (``-1``: per output channel)."""
        return Int4QuantizationConfig(block_size=None if self.block_size == -1 else self.block_size)


def from_name(name: str) -> QuantizedDTypePolicy:
    """The quantized policy a name such as ``"int8_from_float32"`` or ``"int4/128_from_float32"``
    stands for (Keras's parsing)."""
    mode, sep, source = name.partition("_from_")
    if not sep or not source:
        raise ValueError(f"Cannot read the quantized dtype policy {name!r}: expected '<mode>_from_<source policy>' "
                         "such as 'int8_from_float32'.")
    if mode.startswith("int4/"):
        return Int4DTypePolicy(mode, source)
    return QuantizedDTypePolicy(mode, source)


_CLASSES = {"QuantizedDTypePolicy": QuantizedDTypePolicy, "Int4DTypePolicy": Int4DTypePolicy}
for _cls in _CLASSES.values():
    register_builtin(_cls)
install_quantized_policies(_MODES, from_name, _CLASSES)

__all__ = ["Int4DTypePolicy", "QuantizedDTypePolicy"]
