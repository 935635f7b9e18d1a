"""``MultiOptimizer`` and ``OptimizerMap``: different optimizers for different weights (Keras 3).

An ``OptimizerMap`` maps weight paths (exact, else regular expressions matched whole) to
optimizers, with a default for the rest; a ``MultiOptimizer`` builds each optimizer on the
weights mapped to it and dispatches every ``apply`` to them. Each inner optimizer keeps its own
state, counters and learning rate; the ``MultiOptimizer``'s ``variables`` are its own
``iterations`` and (unused, as in Keras) ``learning_rate``, then every inner optimizer's.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping

import optax

from lamina.core import state
from lamina.optimizers import lookup
from lamina.optimizers.base import Optimizer
from lamina.optimizers.loss_scale_optimizer import LossScaleOptimizer
from lamina.saving.serialization import deserialize, serialize


def _check_inner(optimizer, what) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{what} must be an lm.optimizers.Optimizer instance. Received: {optimizer!r}")
    if isinstance(optimizer, LossScaleOptimizer):
        raise ValueError(f"{what} cannot be a LossScaleOptimizer: wrap the MultiOptimizer's inner "
                         "optimizers' loss scaling through MultiOptimizer(loss_scale_factor=...).")
    if isinstance(optimizer, MultiOptimizer):
        raise ValueError(f"{what} cannot be a MultiOptimizer (MultiOptimizers do not nest).")


class OptimizerMap(MutableMapping):
    """Weight paths (or regular expressions over them) to optimizers (Keras 3's ``OptimizerMap``).

    ``map[path]`` is the optimizer stored under exactly ``path``, else the one whose pattern
    matches the whole path (``re.fullmatch``; two matching patterns raise), else
    ``default_optimizer``. ``map(variable)`` looks up ``variable.path``. Keys cannot be
    replaced once set.

    Example:
        >>> import lamina as lm
        >>> opt_map = lm.optimizers.OptimizerMap(lm.optimizers.SGD(name="sgd"))
        >>> opt_map["encoder/.*"] = lm.optimizers.Adam(name="adam")
        >>> opt_map["encoder/dense/kernel"].name, opt_map["decoder/dense/kernel"].name
        ('adam', 'sgd')
    """

    def __init__(self, default_optimizer, optimizer_map=None):
        if not isinstance(default_optimizer, Optimizer):
            raise TypeError(f"default_optimizer must be an lm.optimizers.Optimizer instance. "
                            f"Received: {default_optimizer!r}")
        if optimizer_map is not None and not isinstance(optimizer_map, dict):
            raise TypeError(f"optimizer_map must be a dictionary. Received: {optimizer_map!r}")
        self._default_optimizer = default_optimizer
        # As Keras: the given dict is kept (not checked entry by entry; build checks).
        self._optimizer_map = optimizer_map if optimizer_map is not None else {}

    @property
    def default_optimizer(self) -> Optimizer:
        """The optimizer of the weights no key matches."""
        return self._default_optimizer

    def __getitem__(self, key):
        if key in self._optimizer_map:
            return self._optimizer_map[key]
        matching = [pattern for pattern in self._optimizer_map if re.fullmatch(pattern, key)]
        if len(matching) > 1:
            raise ValueError(f"Multiple optimizers assigned to variable {key}: patterns {matching} all match it.")
        if matching:
            return self._optimizer_map[matching[0]]
        return self._default_optimizer

    def __setitem__(self, key, optimizer):
        if key in self._optimizer_map:
            raise ValueError(
                f"'{key}' already exists in the OptimizerMap with value {self._optimizer_map[key]}. Please "
                "make sure to not use duplicated keys."
            )
        if not isinstance(key, str):
            raise ValueError(f"key must be a string. Received: {key!r}")
        _check_inner(optimizer, "optimizer")
        self._optimizer_map[key] = optimizer

    def __delitem__(self, key):
        del self._optimizer_map[key]

    def __len__(self):
        return len(self._optimizer_map)

    def __iter__(self):
        return iter(self._optimizer_map)

    def __call__(self, variable):
        return self[variable.path]

    def get_config(self) -> dict:
        """Keras's form: the default optimizer and the map, serialized."""
        return {"default_optimizer": serialize(self._default_optimizer),
                "optimizer_map": {key: serialize(opt) for key, opt in self._optimizer_map.items()}}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        default = lookup.deserialize(config["default_optimizer"], custom_objects)
        mapped = {key: lookup.deserialize(value, custom_objects)
                  for key, value in (config.get("optimizer_map") or {}).items()}
        return cls(default, mapped)


class MultiOptimizer(Optimizer):
    """Delegates each weight to its own optimizer (Keras 3's ``MultiOptimizer``).

    Arguments:
        optimizer_map: an ``OptimizerMap``, or a function ``variable -> optimizer``.
        loss_scale_factor: set on every inner optimizer (overriding theirs); ``scale_loss``
            multiplies the loss by it and each inner optimizer divides its gradients back.
        name: the name of the optimizer.

    ``optimizers`` lists the inner optimizers (the map's values, then its default, then those a
    function returned for the first time at ``build``). A ``MultiOptimizer`` has no learning
    rate of its own: reading or setting ``learning_rate`` raises, set it on an inner optimizer
    (the learning-rate callbacks do so for each of them). ``iterations`` counts the calls of
    ``apply``; each inner optimizer counts its own.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> a, b = lm.Variable(jnp.array([1.0]), name="a"), lm.Variable(jnp.array([1.0]), name="b")
        >>> opt = lm.optimizers.MultiOptimizer(
        ...     lm.optimizers.OptimizerMap(lm.optimizers.SGD(1.0), {"a": lm.optimizers.SGD(0.5)}))
        >>> opt.apply([jnp.array([1.0]), jnp.array([1.0])], [a, b])
        >>> a.value.tolist(), b.value.tolist(), int(opt.iterations)
        ([0.5], [0.0], 1)
    """

    def __init__(self, optimizer_map, loss_scale_factor=None, name=None):
        if not callable(optimizer_map):
            raise TypeError("MultiOptimizer takes an OptimizerMap or a function variable -> optimizer. "
                            f"Received: {optimizer_map!r}")
        self._inner_optimizers = []
        # Keras's own learning-rate variable (0.0) stays in ``variables``: the same state layout.
        super().__init__(optax.identity(), learning_rate=0.0, loss_scale_factor=loss_scale_factor, name=name)
        self._optimizer_map = optimizer_map
        self._var_to_optimizer: dict[int, int] = {}
        listed = [*optimizer_map.values()] if isinstance(optimizer_map, OptimizerMap) else []
        default = getattr(optimizer_map, "default_optimizer", None)
        for opt in [*listed, *([default] if default is not None else [])]:
            _check_inner(opt, "optimizer")
            if not any(opt is known for known in self._inner_optimizers):
                opt.loss_scale_factor = loss_scale_factor
                self._inner_optimizers.append(opt)

    @property
    def optimizers(self) -> list:
        """The inner optimizers."""
        return self._inner_optimizers

    @property
    def loss_scale_factor(self):
        return getattr(self, "_loss_scale_factor", None)

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        self._loss_scale_factor = value
        for opt in getattr(self, "_inner_optimizers", ()):
            opt.loss_scale_factor = value

    @property
    def learning_rate(self):
        raise AttributeError("Learning rate cannot be accessed on a MultiOptimizer. Access the learning rate "
                             "on the individual sub-optimizers instead (multi_optimizer.optimizers).")

    @learning_rate.setter
    def learning_rate(self, value):
        raise AttributeError("Learning rate cannot be set on a MultiOptimizer. Set the learning rate on the "
                             "individual sub-optimizers instead (multi_optimizer.optimizers).")

    # -- state ------------------------------------------------------------------------------------
    def build(self, var_list) -> None:
        """Ask the map for each variable's optimizer and build each on its variables."""
        if self._built:
            return
        variables = list(var_list)
        groups = [[] for _ in self._inner_optimizers]
        assignment = {}
        for v in variables:
            opt = self._optimizer_map(v)
            _check_inner(opt, f"The optimizer the map gives variable '{getattr(v, 'path', v)}'")
            index = next((i for i, known in enumerate(self._inner_optimizers) if known is opt), None)
            if index is None:
                opt.loss_scale_factor = self.loss_scale_factor
                self._inner_optimizers.append(opt)
                groups.append([])
                index = len(self._inner_optimizers) - 1
            assignment[id(v)] = index
            groups[index].append(v)
        for opt, group in zip(self._inner_optimizers, groups):
            if group:
                opt.build(group)
        self._var_to_optimizer = assignment
        self._mark_built(variables)

    @property
    def variables(self) -> list:
        """``iterations``, the (unused) ``learning_rate``, then each inner optimizer's variables."""
        state.note_consulted(self)
        own = [self._iterations, self._learning_rate]
        for opt in self._inner_optimizers:
            own.extend(opt.variables)
        return own

    def state_items(self) -> list:
        """Its own two items, then each inner optimizer's with its position as a prefix
        (``"0/mu"``): saved as ``optimizer/0/mu/dense/kernel``."""
        items = [("iterations", self._iterations, None), ("learning_rate", self._learning_rate, None)]
        for i, opt in enumerate(self._inner_optimizers):
            items += [(f"{i}/{field}", variable, weight) for field, variable, weight in opt.state_items()]
        return items

    def keras_file_parts(self):
        """``([iterations, learning_rate], [(inner optimizer, its weights)...])``: how a Keras
        file lists the state (its own two variables, then each inner optimizer's, each on its
        weights in the order they were given to ``build``)."""
        groups = [[] for _ in self._inner_optimizers]
        for v in self._built_variables:
            groups[self._var_to_optimizer[id(v)]].append(v)
        return [self._iterations, self._learning_rate], list(zip(self._inner_optimizers, groups))

    # -- applying ---------------------------------------------------------------------------------
    def apply(self, grads, trainable_variables=None) -> None:
        """Give each inner optimizer the gradients of its variables (Keras's dispatch)."""
        state.note_consulted(self)
        grads = list(grads)
        if not grads:
            return
        trainable_variables = self._variables_to_update(trainable_variables)
        if len(grads) != len(trainable_variables):
            raise ValueError(f"MultiOptimizer '{self.name}': received {len(grads)} gradients for "
                             f"{len(trainable_variables)} variables; they must line up one to one.")
        self._build_before_apply(trainable_variables)
        groups = [([], []) for _ in self._inner_optimizers]
        for g, v in zip(grads, trainable_variables):
            index = self._var_to_optimizer.get(id(v))
            if index is None:
                raise ValueError(
                    f"Unknown variable '{getattr(v, 'path', v)}': MultiOptimizer '{self.name}' can only be "
                    f"called for the variables it was built with ({len(self._built_variables)} variables)."
                )
            groups[index][0].append(g)
            groups[index][1].append(v)
        for opt, (sub_grads, sub_vars) in zip(self._inner_optimizers, groups):
            if sub_vars:
                opt.apply(sub_grads, sub_vars)
        self._iterations.assign_add(1)

    def finalize_variable_values(self, var_list) -> None:
        """Each inner optimizer's (its moving averages into its weights, with ``use_ema``)."""
        if not self._built:
            return
        groups = [[] for _ in self._inner_optimizers]
        for v in var_list:
            index = self._var_to_optimizer.get(id(v))
            if index is not None:
                groups[index].append(v)
        for opt, group in zip(self._inner_optimizers, groups):
            if group:
                opt.finalize_variable_values(group)

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Every inner optimizer's."""
        for opt in self._inner_optimizers:
            opt.exclude_from_weight_decay(var_list, var_names)

    # -- configuration ------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Keras's keys: the serialized map (an ``OptimizerMap`` or a registered function),
        ``loss_scale_factor`` and ``name``."""
        return {"optimizer_map": serialize(self._optimizer_map), "loss_scale_factor": self.loss_scale_factor,
                "name": self.name}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        config = dict(config)
        if "optimizer_map" not in config:
            raise ValueError(f"A MultiOptimizer config needs 'optimizer_map'; received keys {sorted(config)}.")
        mapped = config.pop("optimizer_map")
        if isinstance(mapped, dict) and mapped.get("class_name") == "OptimizerMap":
            optimizer_map = OptimizerMap.from_config(mapped.get("config") or {}, custom_objects)
        else:
            optimizer_map = deserialize(mapped, custom_objects)
        return cls(optimizer_map, **config)


__all__ = ["MultiOptimizer", "OptimizerMap"]
