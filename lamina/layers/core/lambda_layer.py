"""``Lambda``: wrap a function as a layer.

A Lambda's function is *code*. Its config stores a registered function (a built-in such as
``lm.activations.relu``, or one decorated with ``@lm.saving.register_serializable()``) by its
registered name, which loads safely. Any other function (a ``lambda``, a local or unregistered
function) is stored as a ``{"class_name": "__lambda__", ...}`` marker that names it for the
reader but holds no code: ``from_config`` refuses it, and so will safe loading. lamina never
writes bytecode into a config (Keras does, and loads it only with ``safe_mode=False``).
"""

from __future__ import annotations

import inspect

import jax
import numpy as np

from lamina.core.abstract import abstract_eval
from lamina.layers.layer import Layer
from lamina.saving.object_registry import get_registered_name, lookup, register_builtin
from lamina.saving.safe_mode import refuse_code
from lamina.saving.serialization import deserialize_object

LAMBDA_MARKER = "__lambda__"
_ARRAY_MARKER = "__numpy__"


@register_builtin
class Lambda(Layer):
    """Calls ``function(inputs, **arguments)``, as ``keras.layers.Lambda``.

    ``output_shape`` (optional) is the shape after the batch axis, or a function of the
    input shape; by default it is found by tracing ``function``. ``mask`` is ``None``, a
    function ``(inputs, mask) -> mask``, or a fixed mask array. A function that takes
    ``mask`` or ``training`` parameters receives them.

    Only registered functions survive ``get_config`` / ``from_config``; prefer a ``Layer``
    subclass for anything that must be saved.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> square = lm.layers.Lambda(lambda x: x ** 2)
        >>> square(jnp.array([1.0, 3.0])).tolist()
        [1.0, 9.0]
        >>> lm.layers.Lambda(lm.activations.relu).get_config()["function"]
        'relu'
        >>> square.get_config()["function"]["class_name"]
        '__lambda__'
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda '{self.name}': function must be callable, got {function!r}.")
        self.function = function
        self.arguments = dict(arguments or {})
        self.mask = mask
        self.supports_masking = mask is not None
        self._output_shape = output_shape if callable(output_shape) else _as_shapes(output_shape)
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):  # some builtins have no signature
            params = {}
        self._fn_expects_mask = "mask" in params
        self._fn_expects_training = "training" in params
        self.built = True

    def call(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if self._fn_expects_mask:
            kwargs["mask"] = mask
        if self._fn_expects_training:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def compute_output_shape(self, input_shape):
        input_shape = _as_shapes(input_shape)
        if self._output_shape is None:
            return _traced_output_shape(self, input_shape)
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        batch = jax.tree_util.tree_leaves(input_shape, is_leaf=_is_shape)[0][0] if input_shape else None
        return jax.tree_util.tree_map(lambda s: (batch, *s), self._output_shape, is_leaf=_is_shape)

    def get_config(self):
        config = {**super().get_config(), "function": serialize_function(self.function)}
        if self._output_shape is not None:
            config["output_shape"] = (serialize_function(self._output_shape) if callable(self._output_shape)
                                      else _json_shape(self._output_shape))
        if self.mask is not None:
            if callable(self.mask):
                config["mask"] = serialize_function(self.mask)
            else:
                array = np.asarray(self.mask)
                config["mask"] = {"class_name": _ARRAY_MARKER,
                                  "config": {"value": array.tolist(), "dtype": array.dtype.name}}
        bad = [k for k, v in self.arguments.items() if not _is_json(v)]
        if bad:
            raise TypeError(
                f"Lambda '{self.path}': arguments {bad} are not plain JSON values, so the layer "
                "cannot be serialized; write a Layer subclass with its own get_config() instead."
            )
        config["arguments"] = dict(self.arguments)
        return config

    @classmethod
    def from_config(cls, config):
        refuse_code(f"Lambda layer {config.get('name', '')!r}")
        config = dict(config)
        config["function"] = deserialize_function(config["function"], what="function")
        if "output_shape" in config:
            shape = config["output_shape"]
            if isinstance(shape, (str, dict)):
                config["output_shape"] = deserialize_function(shape, what="output_shape")
        if "mask" in config:
            mask = config["mask"]
            if isinstance(mask, dict) and mask.get("class_name") == _ARRAY_MARKER:
                config["mask"] = np.asarray(mask["config"]["value"], dtype=mask["config"]["dtype"])
            elif mask is not None:
                config["mask"] = deserialize_function(mask, what="mask")
        return super().from_config(config)


def serialize_function(fn):
    """A registered function's name, or the ``__lambda__`` marker for any other function."""
    name = get_registered_name(fn)
    if lookup(name) is fn:
        return name
    # Code is never serialized: this marker only names the function for a human reader, and
    # every loader refuses it.
    return {
        "class_name": LAMBDA_MARKER,
        "config": {"name": getattr(fn, "__qualname__", repr(fn)), "module": getattr(fn, "__module__", None)},
    }


def deserialize_function(config, *, what="function"):
    """Resolve a function stored by ``serialize_function`` (or in Keras's form,
    ``{"class_name": "function", "config": <name>}``); refuses the ``__lambda__`` marker."""
    if isinstance(config, dict) and config.get("class_name") == LAMBDA_MARKER:
        name = (config.get("config") or {}).get("name", "<unknown>")
        raise ValueError(
            f"This Lambda layer's {what} is Python code ({name!r}), which lamina does not store "
            "and will not load. Register the function with @lm.saving.register_serializable() "
            "before saving, or replace the Lambda with a Layer subclass."
        )
    if isinstance(config, str):
        fn = lookup(config)
        if fn is None or not callable(fn):
            raise ValueError(
                f"Unknown Lambda {what} {config!r}: register it with "
                "@lm.saving.register_serializable() or pass it in custom_objects."
            )
        return fn
    if isinstance(config, dict) and config.get("class_name") == "function":
        # Keras's form for a named function (what Keras's Lambda writes): the same registry look-up.
        return deserialize_object(config, kind="Lambda" if what == "function" else f"Lambda {what}", aliases={})
    raise ValueError(f"Cannot interpret Lambda {what} config {config!r}.")


def _traced_output_shape(layer, input_shape):
    """Shapes of ``call`` on abstract inputs (``None`` axes found by tracing twice)."""

    def traced(fill):
        specs = jax.tree_util.tree_map(
            lambda s: jax.ShapeDtypeStruct(tuple(fill if d is None else d for d in s), layer.dtype),
            input_shape, is_leaf=_is_shape,
        )
        out = abstract_eval(lambda x: layer.call(x), specs)
        return jax.tree_util.tree_map(lambda s: tuple(s.shape), out)

    first, second = traced(2), traced(3)
    return jax.tree_util.tree_map(
        lambda a, b: tuple(x if x == y else None for x, y in zip(a, b)), first, second, is_leaf=_is_shape,
    )


def _is_shape(value) -> bool:
    return isinstance(value, tuple) and all(d is None or isinstance(d, int) for d in value)


def _as_shapes(value):
    """Shapes as tuples (JSON gives lists), inside any list/dict structure of shapes."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and all(d is None or isinstance(d, int) for d in value):
        return tuple(value)
    if isinstance(value, (list, tuple)):
        return [_as_shapes(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_shapes(v) for k, v in value.items()}
    return value


def _json_shape(shape):
    return list(shape) if _is_shape(shape) else jax.tree_util.tree_map(list, shape, is_leaf=_is_shape)


def _is_json(value) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


__all__ = ["Lambda"]
