"""The metric base class and the reducing metrics: ``Metric``, ``Sum``, ``Mean``, ``MeanMetricWrapper``.

A metric's running statistics are non-trainable ``lm.Variable``s created by ``add_variable``
and changed only through ``assign`` / ``assign_add``. There is no Python-side accumulation, so
the same ``update_state`` runs eagerly, inside ``lm.jit`` and inside ``fit``'s compiled step
(which find and thread the variables by themselves) and gives the same numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lamina.core import state
from lamina.core.arrays import as_jax_array
from lamina.core.naming import to_snake_case, unique_name
from lamina.core.variable import Variable
from lamina.losses import squeeze_or_expand_to_same_rank  # one alignment rule for losses and metrics
from lamina.saving.object_registry import get_registered_name
from lamina.saving.serialization import deserialize_object

# -- helpers shared by the metric modules ---------------------------------------------------


def to_array(x, dtype=None) -> jax.Array:
    """``x`` (list, NumPy, JAX array or ``lm.Variable``) as a JAX array, cast to ``dtype``."""
    if isinstance(x, Variable):
        x = x.value
    x = as_jax_array(x)
    return x if dtype is None or x.dtype == jnp.dtype(dtype) else x.astype(dtype)


def divide_no_nan(x, y):
    """``x / y``, and 0 where ``y == 0`` (Keras's ``ops.divide_no_nan``)."""
    safe = jnp.where(y == 0, 1, y)
    return jnp.where(y == 0, 0, x / safe)


def reduce_to_samplewise_values(values, sample_weight, reduce_fn, dtype):
    """Keras's reduction: weight ``values`` by ``sample_weight`` (after reducing the axes the
    weight does not have) and reduce every axis but the first. Returns ``(values, weights)``.
    """
    values = to_array(values, dtype)
    if sample_weight is not None:
        sample_weight = to_array(sample_weight, dtype)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        weight_ndim, values_ndim = sample_weight.ndim, values.ndim
        if values_ndim > weight_ndim:
            values = reduce_fn(values, axis=tuple(range(weight_ndim, values_ndim)))
        sample_weight = jnp.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if weight_ndim > 1:
            sample_weight = reduce_fn(sample_weight, axis=tuple(range(1, weight_ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)))
    return values, sample_weight


def standardize_dtype(dtype) -> str:
    """A metric's computation dtype as a string; ``None`` is ``"float32"`` and a mixed
    precision policy (``"mixed_bfloat16"`` or an object with ``compute_dtype``) gives its
    compute dtype, as in Keras."""
    if dtype is None:
        return "float32"
    if hasattr(dtype, "compute_dtype"):
        dtype = dtype.compute_dtype
    if isinstance(dtype, str) and dtype.startswith("mixed_"):
        dtype = dtype[len("mixed_"):]
    return jnp.dtype(dtype).name


# -- the stateless (Keras-on-JAX) form --------------------------------------------------------


def state_values(values) -> list:
    """State given to a stateless method as a list of values; a ``Variable`` in it stands for
    its current value (Keras converts one the same way, and the guides pass ``m.variables``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> [a.tolist() for a in state_values([lm.Variable(jnp.ones(2)), jnp.zeros(1)])]
        [[1.0, 1.0], [0.0]]
    """
    return [v.value if isinstance(v, Variable) else v for v in values]


class StatelessMetricMixin:
    """Keras's stateless metric API for any object with ``variables``, ``update_state``,
    ``result`` and ``reset_state`` (``Metric`` and the trainer's compiled-metrics container).

    The methods take and return the state as a list of values aligned with ``variables`` and
    leave the metric untouched, so they work inside raw ``jax.jit`` / ``jax.grad`` code ported
    from Keras on JAX. lamina's stateful form (``update_state`` inside ``lm.jit``) stays the
    simpler one.

    Example:
        >>> import jax, jax.numpy as jnp, lamina as lm
        >>> m = lm.metrics.Mean()
        >>> values = m.stateless_reset_state()
        >>> values = jax.jit(lambda v: m.stateless_update_state(v, jnp.array([1.0, 3.0])))(values)
        >>> float(m.stateless_result(values)), float(m.result())
        (2.0, 0.0)
    """

    # Held by a layer, a metric's state is listed in `metrics_variables`, not `variables`.
    _lm_state_role = "metric"

    def stateless_update_state(self, metric_variables, *args, **kwargs) -> list:
        """``update_state(*args, **kwargs)`` on the state ``metric_variables``; returns the new
        state (a list aligned with ``variables``)."""
        variables = self._lm_check_state(metric_variables, "stateless_update_state")
        pure = state.functionalize(lambda: self.update_state(*args, **kwargs), variables)
        _, new_values, _ = pure(state_values(metric_variables))
        return new_values

    def stateless_result(self, metric_variables):
        """``result()`` computed from the state ``metric_variables``."""
        variables = self._lm_check_state(metric_variables, "stateless_result")
        outputs, _, _ = state.functionalize(self.result, variables)(state_values(metric_variables))
        return outputs

    def stateless_reset_state(self) -> list:
        """The state ``reset_state()`` would give, as a list aligned with ``variables``."""
        variables = list(self.variables)
        with state.StateScope() as scope:
            self.reset_state()
        return [scope.read(v) for v in variables]

    def _lm_check_state(self, metric_variables, method: str) -> list:
        variables = list(self.variables)
        if len(metric_variables) != len(variables):
            raise ValueError(
                f"{method}() of metric '{self.name}': `metric_variables` must hold one value per "
                f"entry of `{type(self).__name__}.variables` ({len(variables)}, in that order); "
                f"received {len(metric_variables)}."
            )
        return variables


# -- Metric ---------------------------------------------------------------------------------


class Metric(StatelessMetricMixin):
    """Base class of metrics: state in variables, ``update_state`` / ``result`` / ``reset_state``.

    Subclasses create their state in ``__init__`` with ``add_variable`` and change it with
    ``assign`` / ``assign_add`` in ``update_state``; ``result`` computes the value from the
    variables. Calling the metric runs ``update_state`` and returns ``result()``. A metric
    stored on a layer or model attribute is tracked: its variables appear in
    ``layer.variables`` (not in ``layer.weights``), and ``lm.jit`` / ``fit`` thread them through
    compiled code. Variables are named ``"<metric name>/<variable name>"`` in their ``path``.

    ``reset_state`` assigns every variable its initial value (zeros unless ``add_variable`` was
    given another initializer). Unlike Keras, ``add_variable(dtype=None)`` uses the metric's
    dtype rather than the global float type; both are ``float32`` by default.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> class Positives(lm.metrics.Metric):
        ...     def __init__(self, name="positives", dtype=None):
        ...         super().__init__(name=name, dtype=dtype)
        ...         self.count = self.add_variable((), name="count")
        ...     def update_state(self, values):
        ...         self.count.assign_add(jnp.sum(jnp.asarray(values) > 0))
        ...     def result(self):
        ...         return self.count.value
        >>> m = Positives()
        >>> float(m([1.0, -2.0, 3.0]))
        2.0
        >>> m.reset_state(); float(m.result())
        0.0
    """

    def __init__(self, name=None, dtype=None):
        object.__setattr__(self, "_lm_variables", [])
        object.__setattr__(self, "_lm_metrics", [])
        object.__setattr__(self, "_lm_initial_values", {})
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self._dtype = standardize_dtype(dtype)

    # -- state ----------------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        """The dtype results are computed in (a string such as ``"float32"``)."""
        return self._dtype

    @property
    def path(self) -> str:
        """The metric's name: the prefix of its variables' paths (``"mean/total"``)."""
        return self.name

    def add_variable(self, shape, initializer="zeros", dtype=None, aggregation="sum", name=None):
        """Create a non-trainable state variable tracked by this metric and return it.

        ``aggregation`` is accepted for Keras compatibility and ignored (no distribution
        strategy reduces metric state in lamina: data-parallel steps compute each update on
        the whole global batch).
        """
        self._check_super_called()
        shape = () if shape is None else tuple(int(d) for d in shape)
        variable = Variable(initializer, shape=shape, dtype=dtype or self._dtype, trainable=False,
                            name=name or "variable")
        # The metric owns its variables: paths read "<metric name>/<variable name>" wherever
        # the metric is held, as in Keras.
        variable._attach(self, None)
        self._lm_initial_values[id(variable)] = np.asarray(variable.value)
        self._track(variable)
        return variable

    def add_weight(self, shape=(), initializer="zeros", dtype=None, name=None):
        """Alias of ``add_variable`` (Keras keeps it for backward compatibility)."""
        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, name=name)

    def _track(self, value) -> None:
        if isinstance(value, Variable):
            if not any(v is value for v in self._lm_variables):
                self._lm_variables.append(value)
        elif isinstance(value, Metric):
            if not any(m is value for m in self._lm_metrics):
                self._lm_metrics.append(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._track(item)
        elif isinstance(value, dict):
            for item in value.values():
                self._track(item)

    def __setattr__(self, name, value):
        # Variables and metrics stored on attributes are tracked, as in Keras (so a metric
        # built from other metrics exposes their state too).
        if "_lm_variables" in self.__dict__ and not name.startswith("_lm_"):
            self._track(value)
        object.__setattr__(self, name, value)

    @property
    def variables(self) -> list:
        """The state variables: this metric's, then those of metrics held in attributes."""
        out, seen = [], set()
        for v in [*self._lm_variables, *(v for m in self._lm_metrics for v in m.variables)]:
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
        return out

    def _lm_state_variables(self) -> list:
        # The hook by which layer tracking finds state held by non-layer objects.
        return self.variables

    def reset_state(self) -> None:
        """Assign every state variable its initial value (Keras: zeros)."""
        for v in self.variables:
            initial = self._initial_value(v)
            # A host-to-device transfer each, where jnp.zeros (or jnp.asarray of a NumPy
            # scalar) compiles a small program per shape at the first fit.
            v.assign(jax.device_put(np.zeros(v.shape, v.dtype) if initial is None else initial))

    def _initial_value(self, variable):
        initial = self._lm_initial_values.get(id(variable))
        if initial is None:
            for metric in self._lm_metrics:
                initial = metric._initial_value(variable)
                if initial is not None:
                    break
        return initial

    # -- the protocol ---------------------------------------------------------------------
    def update_state(self, *args, **kwargs) -> None:
        """Accumulate statistics from one batch (subclasses implement it)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement update_state().")

    def result(self):
        """The metric value from the current state (subclasses implement it)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement result().")

    def __call__(self, *args, **kwargs):
        """``update_state(*args, **kwargs)``, then return ``result()`` (Keras semantics)."""
        self._check_super_called()
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def _check_super_called(self) -> None:
        if "_lm_variables" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before creating "
                "variables or being used."
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


# -- reducing metrics -----------------------------------------------------------------------


class Sum(Metric):
    """The (weighted) sum of the values given.

    Example:
        >>> m = Sum()
        >>> m.update_state([1, 3, 5, 7])
        >>> float(m.result())
        16.0
        >>> m.reset_state()
        >>> m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
        >>> float(m.result())
        4.0
    """

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="total")

    def update_state(self, values, sample_weight=None) -> None:
        values, _ = reduce_to_samplewise_values(values, sample_weight, jnp.sum, self.dtype)
        self.total.assign_add(jnp.sum(values))

    def result(self):
        return self.total.value.astype(self.dtype)


class Mean(Metric):
    """The (weighted) mean of the values given: ``total / count``.

    Values of rank > 1 are first averaged per sample (over all axes but the first, or the axes
    ``sample_weight`` does not cover), as in Keras.

    Example:
        >>> m = Mean()
        >>> m.update_state([1, 3, 5, 7])
        >>> float(m.result())
        4.0
        >>> m.reset_state()
        >>> m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
        >>> float(m.result())
        2.0
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="count")

    def update_state(self, values, sample_weight=None) -> None:
        values, sample_weight = reduce_to_samplewise_values(values, sample_weight, jnp.mean, self.dtype)
        self.total.assign_add(jnp.sum(values))
        if sample_weight is not None:
            num_samples = jnp.sum(sample_weight)
        elif values.ndim >= 1:
            num_samples = values.shape[0]
        else:
            num_samples = 1
        self.count.assign_add(jnp.asarray(num_samples, self.dtype))

    def result(self):
        return divide_no_nan(self.total.value, self.count.value.astype(self.dtype))


class MeanMetricWrapper(Mean):
    """The running mean of ``fn(y_true, y_pred, **kwargs)``, a per-sample metric function.

    ``fn`` returns one value per sample (or per element; extra axes are averaged per sample).
    ``sample_weight`` weights the samples as in ``Mean``.

    Example:
        >>> import jax.numpy as jnp
        >>> def abs_error(y_true, y_pred):
        ...     return jnp.abs(jnp.asarray(y_true) - jnp.asarray(y_pred))
        >>> m = MeanMetricWrapper(abs_error, name="abs_error")
        >>> m.update_state([0.0, 1.0], [1.0, 1.0])
        >>> float(m.result())
        0.5
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self) -> dict:
        fn = self._fn
        fn_config = fn if isinstance(fn, str) else (
            {"class_name": get_registered_name(type(fn)), "config": fn.get_config()}
            if hasattr(fn, "get_config") else get_registered_name(fn)
        )
        return {**super().get_config(), "fn": fn_config, **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        fn = config.get("fn")
        if isinstance(fn, (str, dict)):
            # Through the registry, custom_objects and the active CustomObjectScope only.
            config["fn"] = deserialize_object(fn, kind="metric function", aliases={})
        return cls(**config)
