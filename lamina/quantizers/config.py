"""Quantization configs (``lm.quantizers.Int8QuantizationConfig`` ...): which weight and
activation quantizers ``quantize()`` uses, as Keras 3's configs say."""

from __future__ import annotations

from lamina.quantizers.quantizers import AbsMaxQuantizer
from lamina.saving.serialization import deserialize_object, serialize_object

# Keras's QUANTIZATION_MODES, in its order; lamina implements "int8" and "int4".
QUANTIZATION_MODES = ("int8", "float8", "int4", "gptq", "awq")
SUPPORTED_MODES = ("int8", "int4")


def _quantizer(value):
    if value is None or not isinstance(value, dict):
        return value
    return deserialize_object(value, kind="quantizer", aliases=None)


class QuantizationConfig:
    """Base of the configs: ``weight_quantizer`` quantizes a layer's kernel, and
    ``activation_quantizer`` its inputs at call time (``None``: weights only). Subclasses say
    their ``mode``.

    Example:
        >>> import lamina as lm
        >>> config = lm.quantizers.Int8QuantizationConfig(activation_quantizer=None)
        >>> config.mode, config.get_config()
        ('int8', {'weight_quantizer': None, 'activation_quantizer': None})
    """

    def __init__(self, weight_quantizer=None, activation_quantizer=None):
        self.weight_quantizer = _quantizer(weight_quantizer)
        self.activation_quantizer = _quantizer(activation_quantizer)

    @property
    def mode(self):
        raise NotImplementedError("QuantizationConfig is a base class: use Int8QuantizationConfig or "
                                  "Int4QuantizationConfig.")

    def get_config(self):
        return {"weight_quantizer": serialize_object(self.weight_quantizer),
                "activation_quantizer": serialize_object(self.activation_quantizer)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @staticmethod
    def weight_quantizer_or_default(config, default):
        if config is not None and config.weight_quantizer is not None:
            return config.weight_quantizer
        return default

    @staticmethod
    def activation_quantizer_or_default(config, default):
        # A config given means its activation quantizer, None included (weights only).
        return config.activation_quantizer if config is not None else default

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


class Int8QuantizationConfig(QuantizationConfig):
    """int8 weights (abs-max per output channel) and, by default (``"default"``), int8 inputs
    quantized per row at call time (``AbsMaxQuantizer()``).

    Example:
        >>> import lamina as lm
        >>> lm.quantizers.Int8QuantizationConfig().activation_quantizer.value_range
        (-127, 127)
    """

    def __init__(self, weight_quantizer=None, activation_quantizer="default"):
        if isinstance(activation_quantizer, str) and activation_quantizer == "default":
            activation_quantizer = AbsMaxQuantizer()
        super().__init__(weight_quantizer, activation_quantizer)
        if self.weight_quantizer is not None and self.weight_quantizer.output_dtype != "int8":
            raise ValueError("Int8QuantizationConfig needs a weight_quantizer with output_dtype='int8'; "
                             f"received output_dtype={self.weight_quantizer.output_dtype!r}.")

    @property
    def mode(self):
        return "int8"


class Int4QuantizationConfig(QuantizationConfig):
    """int4 weights packed two per byte. ``block_size`` (default 128) quantizes groups of that
    many input rows asymmetrically (a scale and a zero point per group and output); ``None`` or
    ``-1`` quantizes per output channel, symmetrically. Inputs stay float by default.

    Example:
        >>> import lamina as lm
        >>> lm.quantizers.Int4QuantizationConfig(block_size=-1).get_config()["block_size"]
        -1
    """

    def __init__(self, weight_quantizer=None, activation_quantizer="default", block_size=128):
        if isinstance(activation_quantizer, str) and activation_quantizer == "default":
            activation_quantizer = None
        super().__init__(weight_quantizer, activation_quantizer)
        if block_size is not None and block_size != -1 and (not isinstance(block_size, int) or block_size <= 0):
            raise ValueError(f"Int4QuantizationConfig: block_size must be None, -1 or a positive integer; "
                             f"received {block_size!r}.")
        self.block_size = block_size
        grouped = block_size is not None and block_size > 0
        if grouped and (self.weight_quantizer is not None or self.activation_quantizer is not None):
            raise ValueError("Int4QuantizationConfig: grouped int4 (block_size > 0) takes no custom quantizers; "
                             f"use block_size=None or -1 for them (received block_size={block_size}).")
        if self.weight_quantizer is not None:
            if tuple(self.weight_quantizer.value_range) != (-8, 7):
                raise ValueError("Int4QuantizationConfig needs a weight_quantizer with value_range=(-8, 7); "
                                 f"received {self.weight_quantizer.value_range}.")
            if self.weight_quantizer.output_dtype != "int8":
                raise ValueError("Int4QuantizationConfig needs a weight_quantizer with output_dtype='int8'; "
                                 f"received {self.weight_quantizer.output_dtype!r}.")

    @property
    def mode(self):
        return "int4"

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}

    @classmethod
    def from_config(cls, config):
        # Files written before block_size existed meant per-channel int4.
        return cls(config.get("weight_quantizer"), config.get("activation_quantizer"),
                   config.get("block_size", None))


def resolve(mode, config, where="quantize"):
    """``config`` checked against ``mode``, or the default config of ``mode`` (Keras's
    ``validate_and_resolve_config``); an unknown or unsupported mode raises naming ``where``."""
    if isinstance(config, str):
        mode, config = config, None
    if config is None:
        if mode == "int8":
            return Int8QuantizationConfig()
        if mode == "int4":
            return Int4QuantizationConfig()
        if mode is None:
            raise ValueError(f"{where}: give a mode ('int8' or 'int4') or a config.")
        _check_mode(mode, where)
    if not isinstance(config, QuantizationConfig):
        raise ValueError(f"{where}: config must be a lm.quantizers.QuantizationConfig; received {config!r}.")
    if mode is not None and config.mode != mode:
        raise ValueError(f"{where}: contradictory arguments: mode={mode!r} but config.mode={config.mode!r}.")
    _check_mode(config.mode, where)
    return config


def _check_mode(mode, where):
    if mode not in QUANTIZATION_MODES:
        raise ValueError(f"{where}: invalid quantization mode {mode!r}; expected one of {SUPPORTED_MODES}.")
    if mode not in SUPPORTED_MODES:
        raise NotImplementedError(f"{where}: quantization mode {mode!r} is not implemented in lamina "
                                  f"(supported: {SUPPORTED_MODES}).")


__all__ = ["Int4QuantizationConfig", "Int8QuantizationConfig", "QUANTIZATION_MODES", "QuantizationConfig"]
