"""``DTypePolicy``: which dtype a layer keeps its weights in and which it computes in.

A policy is a name and the two dtypes it stands for: ``"float32"`` (both float32),
``"mixed_bfloat16"`` (weights float32, computation bfloat16), ``"mixed_float16"`` (weights
float32, computation float16), and the plain float dtypes. The global policy is what a layer
built without ``dtype=`` takes, read once, when the layer is constructed.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lamina.core import settings

_MIXED = {"mixed_float16": ("float16", "float32"), "mixed_bfloat16": ("bfloat16", "float32")}
_PLAIN = ("float16", "bfloat16", "float32", "float64")
POLICY_NAMES = (*_PLAIN, *_MIXED)


class DTypePolicy:
    """A layer's dtype policy: ``variable_dtype`` for its weights, ``compute_dtype`` for its
    inputs, its computation and its outputs.

    ``name`` is one of ``"float32"``, ``"float16"``, ``"bfloat16"``, ``"float64"``,
    ``"mixed_float16"`` or ``"mixed_bfloat16"`` (or, as Keras allows for layers that compute
    on integers, another numeric dtype name such as ``"int32"``); ``None`` takes the global
    policy's name. Policies are equal when their names are.

    Example:
        >>> import lamina as lm
        >>> policy = lm.mixed_precision.DTypePolicy("mixed_bfloat16")
        >>> policy.compute_dtype, policy.variable_dtype
        ('bfloat16', 'float32')
        >>> policy.get_config()
        {'name': 'mixed_bfloat16'}
    """

    __slots__ = ("_name", "_compute_dtype", "_variable_dtype")

    def __init__(self, name: str | None = None):
        if name is None:
            name = dtype_policy().name
        if not isinstance(name, str):
            raise TypeError(
                f"DTypePolicy: the name must be a string such as 'mixed_bfloat16'; received "
                f"{name!r} of type {type(name).__name__}."
            )
        if name in _MIXED:
            compute, variable = _MIXED[name]
        else:
            compute = variable = _plain_dtype_name(name)
        self._name = name
        self._compute_dtype = compute
        self._variable_dtype = variable

    @property
    def name(self) -> str:
        """The policy's name (``"mixed_bfloat16"``)."""
        return self._name

    @property
    def compute_dtype(self) -> str:
        """The dtype of a layer's inputs, computation and outputs."""
        return self._compute_dtype

    @property
    def variable_dtype(self) -> str:
        """The dtype a layer creates its weights in."""
        return self._variable_dtype

    # Keras's attribute: a float policy quantizes nothing (quantized.py's policies say a mode).
    quantization_mode = None

    @property
    def is_mixed(self) -> bool:
        """Whether weights and computation differ in dtype (weights are read cast)."""
        return self._compute_dtype != self._variable_dtype

    def get_config(self) -> dict:
        """``{"name": ...}``, Keras's config of a policy."""
        return {"name": self._name}

    @classmethod
    def from_config(cls, config: dict) -> DTypePolicy:
        """The policy ``get_config()`` describes."""
        return cls(**config)

    def __eq__(self, other) -> bool:
        return isinstance(other, DTypePolicy) and other._name == self._name

    def __hash__(self) -> int:
        return hash(self._name)

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self._name}">'




_global = {"policy": None}
_default = {}  # the policy of lm.config.floatx() while no global policy is set
# Quantized policies ("int8_from_float32") live in quantized.py, which subclasses DTypePolicy
# and so installs its parser here: (mode prefixes, parse(name), {class name: class}).
_quantized = {"modes": (), "parse": None, "classes": {}}


def install_quantized_policies(modes, parse, classes) -> None:
    """Let ``get`` read quantized policies' names and configs (called by quantized.py)."""
    _quantized.update(modes=tuple(modes), parse=parse, classes=dict(classes))


def set_dtype_policy(policy) -> None:
    """Set the global policy: a ``DTypePolicy``, a policy name, or a float dtype.

    Layers constructed afterwards without ``dtype=`` take it; layers built before keep theirs.

    Example:
        >>> import lamina as lm
        >>> lm.mixed_precision.set_dtype_policy("mixed_bfloat16")
        >>> lm.layers.Dense(2).compute_dtype
        'bfloat16'
        >>> lm.mixed_precision.set_dtype_policy("float32")
    """
    _global["policy"] = get(policy) if policy is not None else None


def dtype_policy() -> DTypePolicy:
    """The global policy: the one ``set_dtype_policy`` set, else ``DTypePolicy(floatx)``
    (``lm.config.floatx()``, ``"float32"`` unless ``lm.config.set_floatx`` changed it).

    Example:
        >>> import lamina as lm
        >>> lm.mixed_precision.dtype_policy()
        <DTypePolicy "float32">
    """
    policy = _global["policy"]
    if policy is not None:
        return policy
    floatx = settings.floatx()
    if _default.get("name") != floatx:  # one policy object per floatx, not one per layer
        _default.update(name=floatx, policy=DTypePolicy(floatx))
    return _default["policy"]


# Keras 2 / tf.keras's names, kept by Keras 3 in keras.mixed_precision.
set_global_policy = set_dtype_policy
global_policy = dtype_policy


def get(identifier) -> DTypePolicy:
    """A ``DTypePolicy`` from a policy, a name, a dtype (``jnp.bfloat16``, ``np.float32``), a
    config dict (``{"class_name": "DTypePolicy", "config": {"name": ...}}``, Keras's form) or
    ``None`` (the global policy).

    Example:
        >>> import jax.numpy as jnp
        >>> get(jnp.bfloat16), get({"class_name": "DTypePolicy", "config": {"name": "float32"}})
        (<DTypePolicy "bfloat16">, <DTypePolicy "float32">)
    """
    if identifier is None:
        return dtype_policy()
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, str):
        if _quantized["modes"] and identifier.startswith(_quantized["modes"]):
            return _quantized["parse"](identifier)
        return DTypePolicy(identifier)
    if isinstance(identifier, dict):
        return _from_dict(identifier)
    try:
        name = jnp.dtype(identifier).name
    except TypeError:
        raise ValueError(
            f"Cannot interpret dtype {identifier!r}: expected a policy name "
            f"({', '.join(map(repr, POLICY_NAMES))}), a lm.mixed_precision.DTypePolicy or a float dtype."
        ) from None
    return DTypePolicy(name)


def _plain_dtype_name(name: str) -> str:
    if name in _PLAIN:
        return name
    try:
        dtype = np.dtype(jnp.dtype(name))
    except TypeError:
        dtype = None
    if dtype is None or dtype.name != name or not (dtype.kind in "biuf" or dtype == jnp.bfloat16):
        raise ValueError(
            f"Unknown dtype policy {name!r}. Valid policies: {', '.join(map(repr, POLICY_NAMES))} "
            "(or a numeric dtype name such as 'int32')."
        )
    return name


def _from_dict(config: dict) -> DTypePolicy:
    class_name = config.get("class_name")
    inner = config.get("config")
    if class_name in _quantized["classes"] and isinstance(inner, dict):
        return _quantized["classes"][class_name](**inner)
    if class_name not in ("DTypePolicy", "FloatDTypePolicy", "Policy") or not isinstance(inner, dict):
        raise ValueError(
            "A serialized dtype policy must look like {'class_name': 'DTypePolicy', 'config': "
            f"{{'name': ...}}}}; received {config!r}."
        )
    unknown = set(inner) - {"name"}
    if unknown:
        raise ValueError(f"A DTypePolicy config takes only 'name'; received {sorted(unknown)} in {config!r}.")
    return DTypePolicy(inner.get("name"))


def serialize(policy: DTypePolicy) -> dict:
    """Keras 3's config form of a policy, as layers write it under ``"dtype"``.

    Example:
        >>> serialize(DTypePolicy("mixed_float16"))
        {'class_name': 'DTypePolicy', 'config': {'name': 'mixed_float16'}}
    """
    return {"class_name": type(policy).__name__, "config": policy.get_config()}


