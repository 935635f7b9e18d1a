"""``JaxLayer`` and ``FlaxLayer``: a pure JAX model (or a Flax Linen module) as a lamina layer.

The wrapped functions are pure: ``call_fn(params, state, rng, inputs, training)`` (any subset
of those argument names, in any order, ``inputs`` required) and ``init_fn(rng, inputs,
training)``. The layer turns what they take and give into lamina state: each array leaf of
``params`` becomes a trainable variable, each of ``state`` a non-trainable one (named after its
place in the structure: ``params/dense/kernel``), so ``fit``, ``lm.jit``, optimizers and
saving see ordinary weights. ``call`` hands the variables' values to ``call_fn`` in the
structure they came in and assigns the ``state`` it returns; ``rng`` is a fresh key from the
layer's ``SeedGenerator`` in training (``None`` otherwise), so a compiled training step draws
new numbers every time. As in Keras, float leaves take the layer's dtype policy (inputs and
weights reach ``call_fn`` in the compute dtype), other leaves keep their dtype, and leaves that
are not arrays or numbers (``None``, strings) stay as they are.

Saving follows Keras's rules: the config names ``call_fn`` and ``init_fn`` (and a
``FlaxLayer``'s module and method), never their code, so a saved layer loads where those are
registered (``@lm.saving.register_serializable()``) or given in ``custom_objects``. The
weights are not in the config: a loaded layer runs ``init_fn`` when it is built and then
receives the saved values. A layer made from ``params`` without an ``init_fn`` therefore
saves but cannot be rebuilt, in Keras as here.

Flax is optional (``pip install "lamina[flax]"``): it is imported when a ``FlaxLayer`` is
made, never by ``import lamina``.
"""

from __future__ import annotations

import inspect

import jax
import numpy as np

from lamina import random
from lamina.core.variable import Variable
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import deserialize_object, serialize

_CALL_ARGUMENTS = ("params", "state", "rng", "inputs", "training")
_INIT_ARGUMENTS = ("rng", "inputs", "training")


def _argument_names(layer_name, fn, fn_name, allowed) -> list:
    """``fn``'s parameter names, each one of ``allowed``, ``inputs`` among them."""
    if not callable(fn):
        raise TypeError(f"{layer_name}: `{fn_name}` must be a function, got {fn!r}.")
    names = list(inspect.signature(fn).parameters)
    unsupported = [n for n in names if n not in allowed]
    if unsupported:
        raise ValueError(f"{layer_name}: unsupported argument(s) {unsupported} in `{fn_name}`; its arguments may "
                         f"only be named {', '.join(f'`{a}`' for a in allowed)}.")
    if "inputs" not in names:
        raise ValueError(f"{layer_name}: `{fn_name}` must take an `inputs` argument; it takes {names}.")
    return names


def _segment(key) -> str:
    for attribute in ("key", "idx", "name"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def _is_variable(value) -> bool:
    return isinstance(value, Variable)


def _values(tree):
    """``tree`` with each variable replaced by its current value (in ``call``: the compute dtype)."""
    return jax.tree_util.tree_map(lambda v: v.value if isinstance(v, Variable) else v, tree, is_leaf=_is_variable)


def _ones_like_shapes(input_shape):
    """Ones of each input shape (unknown axes as 1), for ``init_fn`` to trace the model with."""
    def is_shape(value):
        return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, int) for d in value)

    return jax.tree_util.tree_map(lambda s: np.ones([1 if d is None else d for d in s], "float32"), input_shape,
                                  is_leaf=is_shape)


@register_builtin
class JaxLayer(Layer):
    """Wraps a pure JAX model, given as ``call_fn`` and ``init_fn`` (or initial ``params`` /
    ``state``), as a layer, as ``keras.layers.JaxLayer``.

    - ``call_fn(params, state, rng, inputs, training)``: any of these argument names, in any
      order (``inputs`` required); with ``state`` it returns ``(outputs, new_state)``.
    - ``init_fn(rng, inputs, training)`` (``inputs`` required) returns the initial ``params``,
      or ``(params, state)`` when ``call_fn`` takes ``state``; run at ``build`` on ones of the
      input's shape, with a key from lamina's global seed stream (``lm.random.set_seed``).
    - ``params`` / ``state``: initial values instead of ``init_fn`` (any pytree of arrays).
    - ``seed``: the seed of the generator ``call_fn``'s ``rng`` comes from in training.

    ``layer.params`` and ``layer.state`` are the structures with lamina variables at their
    leaves. ``native_serialization_platforms`` is accepted and saved for Keras, whose
    TensorFlow backend uses it; lamina runs ``call_fn`` directly.

    Example:
        >>> import jax, jax.numpy as jnp, lamina as lm
        >>> def init(rng, inputs):
        ...     return {"w": jax.random.normal(rng, (inputs.shape[-1], 2)), "b": jnp.zeros(2)}
        >>> def apply(params, inputs):
        ...     return inputs @ params["w"] + params["b"]
        >>> layer = lm.layers.JaxLayer(apply, init)
        >>> layer(jnp.ones((4, 3))).shape
        (4, 2)
        >>> [(w.name, w.shape) for w in layer.trainable_weights]
        [('params/b', (2,)), ('params/w', (3, 2))]
    """

    def __init__(self, call_fn, init_fn=None, params=None, state=None, seed=None,
                 native_serialization_platforms=None, **kwargs):
        super().__init__(**kwargs)
        label = f"{type(self).__name__} '{self.name}'"
        self.call_fn = call_fn
        self.init_fn = init_fn
        self.call_fn_arguments = _argument_names(label, call_fn, "call_fn", _CALL_ARGUMENTS)
        self.init_fn_arguments = None if init_fn is None else _argument_names(label, init_fn, "init_fn",
                                                                               _INIT_ARGUMENTS)
        self.call_fn_has_params = "params" in self.call_fn_arguments
        self.call_fn_has_state = "state" in self.call_fn_arguments
        if init_fn is None and params is None and state is None and (self.call_fn_has_params
                                                                     or self.call_fn_has_state):
            raise ValueError(f"{label}: `init_fn`, `params` and `state` cannot all be None when `call_fn` takes "
                             "a `params` or a `state` argument.")
        self.seed = seed
        self.seed_generator = random.SeedGenerator(seed) if "rng" in self.call_fn_arguments else None
        self.native_serialization_platforms = native_serialization_platforms
        self.params = self._create_variables(params, "params", trainable=True)
        self.state = self._create_variables(state, "state", trainable=False)
        if params is not None or state is not None:
            self.built = True

    # -- state ----------------------------------------------------------------------------------
    def _create_variables(self, values, root, trainable):
        """``values`` with every array or number leaf replaced by a variable of this layer."""
        if values is None:
            return None

        def create(path, value):
            name = "/".join([root, *(_segment(k) for k in path)])
            if isinstance(value, (jax.Array, np.ndarray, np.generic)) or (
                    isinstance(value, (bool, int, float)) and not isinstance(value, Variable)):
                array = np.asarray(value) if not isinstance(value, jax.Array) else value
                dtype = None if np.issubdtype(array.dtype, np.floating) else array.dtype  # floats: the policy's
                return self.add_weight(shape=array.shape, initializer=array, dtype=dtype, trainable=trainable,
                                       name=name)
            return value

        return jax.tree_util.tree_map_with_path(create, values)

    def _init_rng(self):
        return jax.random.PRNGKey(random.draw_seed())

    def _call_rng(self, training):
        return self.seed_generator.next() if training else None

    def build(self, input_shape):
        if self.params is not None or self.state is not None:
            return
        if not (self.call_fn_has_params or self.call_fn_has_state):
            return
        given = {"rng": self._init_rng(), "inputs": _ones_like_shapes(input_shape), "training": True}
        result = self.init_fn(*[given[name] for name in self.init_fn_arguments])
        if self.call_fn_has_state:
            if not (isinstance(result, (tuple, list)) and len(result) == 2):
                raise ValueError(f"{type(self).__name__} '{self.path}': `call_fn` takes `state`, so `init_fn` must "
                                 f"return (params, state); it returned {type(result).__name__}.")
            params, state = result
        else:
            params, state = result, None
        self.params = self._create_variables(params, "params", trainable=True)
        self.state = self._create_variables(state, "state", trainable=False)

    # -- the computation ------------------------------------------------------------------------
    def call(self, inputs, training=False):
        given = {"params": _values(self.params), "state": _values(self.state), "inputs": inputs,
                 "training": training}
        if "rng" in self.call_fn_arguments:
            given["rng"] = self._call_rng(training)
        result = self.call_fn(*[given[name] for name in self.call_fn_arguments])
        if not self.call_fn_has_state:
            return result
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise ValueError(f"{type(self).__name__} '{self.path}': `call_fn` takes `state`, so it must return "
                             f"(outputs, new_state); it returned {type(result).__name__}.")
        outputs, new_state = result
        self._assign_state(new_state)
        return outputs

    def _assign_state(self, new_state):
        held, treedef = jax.tree_util.tree_flatten(self.state, is_leaf=_is_variable)
        try:
            values = treedef.flatten_up_to(new_state)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"{type(self).__name__} '{self.path}': the state `call_fn` returned does not have the structure of "
                f"the state it was given ({treedef}): {error}") from None
        for variable, value in zip(held, values):
            if not isinstance(variable, Variable):
                raise ValueError(
                    f"{type(self).__name__} '{self.path}': the state `call_fn` returned has a value where the "
                    f"state it was given holds {variable!r}, which is not an array or a number.")
            variable.assign(value)

    # -- configuration --------------------------------------------------------------------------
    def get_config(self):
        return {**super().get_config(), "call_fn": _function_config(self, self.call_fn, "call_fn"),
                "init_fn": None if self.init_fn is None else _function_config(self, self.init_fn, "init_fn"),
                "seed": self.seed, "native_serialization_platforms": self.native_serialization_platforms}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("call_fn", "init_fn"):
            if config.get(key) is not None:
                config[key] = _function_from_config(config[key], key)
        return cls(**config)


def _function_config(layer, fn, what):
    """Keras's config for a function: its registered name, never its code."""
    try:
        return serialize(fn)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{type(layer).__name__} '{layer.path}' cannot be saved: its `{what}` ({fn!r}) cannot be "
                         f"named in a config. {error}") from None


def _function_from_config(config, what):
    return deserialize_object(config, kind=f"JaxLayer {what}", aliases={})


def _import_flax_linen():
    try:
        from flax import linen  # noqa: PLC0415 - optional: imported only when a FlaxLayer is made
    except ImportError as error:
        raise ImportError('FlaxLayer needs flax, which is not installed: pip install "lamina[flax]".') from error
    return linen


@register_builtin
class FlaxLayer(JaxLayer):
    """Wraps a Flax Linen ``module`` as a layer, as ``keras.layers.FlaxLayer``.

    ``method`` (default ``module.__call__``) is called as ``module.apply(variables, inputs,
    rngs=..., method=method)``, with ``training=`` when it takes a ``training`` argument.
    ``variables`` (the result of ``module.init``) are used as the initial weights when given;
    otherwise ``module.init`` runs at ``build`` with keys for ``"params"`` and ``"dropout"``.
    The ``"params"`` collection becomes trainable variables and every other collection
    (``"batch_stats"``...) non-trainable ones, updated by each call (Flax's mutable
    collections); in training ``rngs={"dropout": key}`` comes from the layer's seed generator.

    To save it, register the module's class (``@lm.saving.register_serializable()``) and give
    it ``get_config`` / ``from_config``; a ``method`` of the module is saved by name, another
    function must be registered too (Keras's rules).

    Example:
        >>> import jax.numpy as jnp, flax.linen as nn, lamina as lm
        >>> layer = lm.layers.FlaxLayer(nn.Dense(3))
        >>> layer(jnp.ones((2, 4))).shape
        (2, 3)
        >>> [w.name for w in layer.trainable_weights]
        ['params/params/bias', 'params/params/kernel']
    """

    def __init__(self, module, method=None, variables=None, **kwargs):
        linen = _import_flax_linen()
        self.module = module
        self.method = method
        self._apply_mutable = linen.DenyList(["params"])
        takes_training = "training" in inspect.signature(method or module.__call__).parameters
        if takes_training:
            call_fn, init_fn = self._apply_with_training, self._init_with_training
        else:
            call_fn, init_fn = self._apply_without_training, self._init_without_training
        params, state = self._variables_to_params_and_state(variables)
        super().__init__(call_fn=call_fn, init_fn=init_fn, params=params, state=state, **kwargs)

    # Bound methods with JaxLayer's argument names; call_fn takes `state`, so it returns the
    # updated mutable collections along with the outputs.
    def _apply_with_training(self, params, state, rng, inputs, training):
        return self.module.apply(self._params_and_state_to_variables(params, state), inputs, rngs=rng,
                                 method=self.method, mutable=self._apply_mutable, training=training)

    def _apply_without_training(self, params, state, rng, inputs):
        return self.module.apply(self._params_and_state_to_variables(params, state), inputs, rngs=rng,
                                 method=self.method, mutable=self._apply_mutable)

    def _init_with_training(self, rng, inputs, training):
        return self._variables_to_params_and_state(self.module.init(rng, inputs, method=self.method,
                                                                    training=training))

    def _init_without_training(self, rng, inputs):
        return self._variables_to_params_and_state(self.module.init(rng, inputs, method=self.method))

    @staticmethod
    def _params_and_state_to_variables(params, state):
        return {**(params or {}), **(state or {})}

    @staticmethod
    def _variables_to_params_and_state(variables):
        """Flax's variables split as Keras does: ``({"params": ...}, {other collections})``."""
        if variables is None:
            return None, None
        variables = dict(variables)
        if "params" not in variables:
            return {}, variables
        return {"params": variables["params"]}, {k: v for k, v in variables.items() if k != "params"}

    def _init_rng(self):
        return {"params": jax.random.PRNGKey(random.draw_seed()), "dropout": jax.random.PRNGKey(random.draw_seed())}

    def _call_rng(self, training):
        return {"dropout": self.seed_generator.next()} if training else {}

    def get_config(self):
        config = Layer.get_config(self)
        if not hasattr(self.module, "get_config"):
            raise ValueError(
                f"FlaxLayer '{self.path}' cannot be saved: its module {type(self.module).__name__} has no "
                "get_config(). Register the module's class with @lm.saving.register_serializable() and give it "
                "get_config() / from_config(), as Keras requires.")
        method = self.method
        if getattr(method, "__self__", None) is self.module:
            method = method.__name__  # a method of the module is saved by name
        return {**config, "module": serialize(self.module),
                "method": method if method is None or isinstance(method, str)
                else _function_config(self, method, "method"),
                "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        module = deserialize_object(config["module"], kind="FlaxLayer module", aliases={})
        method = config.get("method")
        if isinstance(method, str):
            method = getattr(module, method)
        elif method is not None:
            method = _function_from_config(method, "method")
        config["module"], config["method"] = module, method
        return cls(**config)


__all__ = ["FlaxLayer", "JaxLayer"]
