"""``lm.Layer``: state (variables, sublayers) plus a computation (``call``).

How it works, in the order a newcomer asks:
- *Tracking*: ``__setattr__`` notes every ``Variable``, ``Layer`` or state holder (seed
  generators, metrics) assigned to an attribute, also inside (nested) lists, tuples and dicts.
  ``weights`` and friends walk the attributes at query time, so a layer appended to a list
  attribute later is tracked too; everything is de-duplicated by identity.
- *Building*: the first ``__call__`` runs ``build(input_shape)`` outside any trace
  (``jax.ensure_compile_time_eval``), so variables always start as real arrays.
- *Calling*: ``__call__`` converts the first input, builds once, checks ``input_spec``,
  resolves ``training`` through the call context, passes masks on (see *Masks*), runs
  ``call``, records the output masks, and names this layer's path on any error that escapes
  ``call``.
- *Masks* (as Keras 3): the first input's mask (for a list of inputs, the list of their masks,
  when any has one) goes to a ``call`` that takes ``mask`` and to ``compute_mask``; a tensor
  argument ``x`` whose ``call`` also takes ``x_mask`` (``query``/``query_mask``...) gets its
  mask there unless one is given. ``compute_mask``'s result (one mask, or one per output of
  a tuple/list output; ``None`` for none) is recorded on each output that has no mask yet.
  Unlike Keras, ``mask`` is also filled when ``call`` gets other tensors (``initial_state``).
- *Losses*: ``add_loss`` stores values tagged with the outermost call they belong to in a
  ``LossStore`` (lamina/core/loss_store.py): the active state scope's, or the layer's own
  outside any scope, so ``losses`` returns only the last call's.
"""

from __future__ import annotations

import functools
import inspect
import weakref

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import array as _jax_array_impl

from lamina import constraints, regularizers
from lamina.core import remat, state
from lamina.core.abstract import abstract_eval
from lamina.core.arrays import as_jax_array
from lamina.core.loss_store import own_store as own_loss_store
from lamina.core.naming import to_snake_case, unique_name
from lamina.core.symbolic import contains_symbolic, symbolic_call
from lamina.core.variable import AGGREGATIONS, Variable, autocast_state
from lamina.distribution import current as current_distribution
from lamina.distribution import placement
from lamina.distribution.devices import lay_out_output
from lamina.layers import keras_hooks
from lamina.layers.call_context import context
from lamina.layers.input_spec import InputSpec
from lamina.layers.masking import get_mask, set_mask
from lamina.mixed_precision import policy as policies
from lamina.saving.object_registry import register_family
from lamina.saving.serialization import passes_config_to_constructor, signature_of

# The concrete array class, named without creating an array: making one at import would
# start JAX's backend, after which jax.distributed.initialize() refuses to run.
_ARRAY_IMPL = _jax_array_impl.ArrayImpl
_FLOAT_DTYPES = frozenset(map(jnp.dtype, ("float16", "bfloat16", "float32", "float64")))
_BASE_CONFIG_KEYS = ("name", "trainable", "dtype")


class Layer:
    """Base class of all layers: subclass it and write ``__init__``, ``build`` and ``call``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> class Linear(lm.Layer):
        ...     def __init__(self, units=32):
        ...         super().__init__()
        ...         self.units = units
        ...     def build(self, input_shape):
        ...         self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
        ...         self.b = self.add_weight(shape=(self.units,), initializer="zeros")
        ...     def call(self, inputs):
        ...         return jnp.matmul(inputs, self.w) + self.b
        >>> layer = Linear(4)
        >>> layer(jnp.ones((2, 2))).shape
        (2, 4)
        >>> [w.name for w in layer.weights]
        ['w', 'b']
    """

    # How sublayers are keyed in paths, and so in weight files: "attribute", by the attribute
    # that holds them (the same in every process); Sequential and Functional say "name", by
    # layer name, which may be auto-generated from a process-wide counter.
    _lm_child_keys = "attribute"
    # What kind of model the layer is, for the code below lamina.models that tells models
    # apart without importing them (saving, Keras files): None for a layer that is not a
    # model; Model says "subclassed", Sequential "sequential", Functional "functional".
    _lm_model_kind = None

    def __new__(cls, *args, **kwargs):
        layer = super().__new__(cls)
        # Internal state lives under ``_lm_`` names, which tracking skips, and is set here so
        # that a subclass may assign attributes before (or without) calling super().__init__().
        layer.__dict__.update(
            _lm_name=None, _lm_trainable=True, _lm_dtype=jnp.dtype("float32"), _lm_added=[],
            _lm_autocast_dtype=jnp.dtype("float32"), _lm_policy=None, _lm_variable_cast=None,
            _lm_parent=None, _lm_segment=None, _lm_losses=None, _lm_last_call_id=-1,
            _lm_build_shape=None, _lm_init_args=_bind_init_args(cls, args, kwargs),
            _lm_inbound_nodes=[],
            built=False, input_spec=None, activity_regularizer=None, supports_masking=False,
        )
        return layer

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # As in Keras, a direct ``layer.build(shape)`` builds the layer for good: the first call
        # must not build it again (and replace weights set in between).
        if "build" in cls.__dict__:
            cls.build = _marks_built(cls.__dict__["build"])

    def __init__(self, *, name=None, dtype=None, trainable=True, activity_regularizer=None,
                 **kwargs):
        unknown = set(kwargs) - {"input_shape", "input_dim", "batch_size", "autocast"}
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(unknown)}.")
        self._lm_name = name or self._lm_name
        if self._lm_name is None:
            self._lm_name = unique_name(to_snake_case(type(self).__name__))
        self._lm_trainable = bool(trainable)
        self._lm_set_policy(dtype, kwargs.get("autocast", True))
        if activity_regularizer is not None:
            self.activity_regularizer = regularizers.get(activity_regularizer)
        if "input_shape" in kwargs or "input_dim" in kwargs:
            shape = kwargs.get("input_shape") or (kwargs["input_dim"],)
            self._lm_declared_input_shape = (kwargs.get("batch_size"),) + tuple(shape)
        # As Keras: the RematScope active when the layer is made decides (rematerialized_call).
        self._lm_remat_mode = remat.current_mode()

    # -- identity -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The layer's name: given to the constructor, else the snake-cased class name made
        unique in this process (``dense``, ``dense_1``, ...)."""
        if self._lm_name is None:  # a subclass that never called super().__init__()
            self._lm_name = unique_name(to_snake_case(type(self).__name__))
        return self._lm_name

    @property
    def path(self) -> str:
        """Where this layer sits: ``"mlp_block/linear_1"`` (attribute names below the root)."""
        parent = self._lm_parent() if self._lm_parent is not None else None
        return f"{parent.path}/{self._lm_segment}" if parent is not None else self.name

    def _lm_set_policy(self, dtype, autocast=True) -> None:
        """Take the dtype policy ``dtype`` (a policy, its name, a dtype, a config dict; ``None``:
        the global policy). Floating inputs are cast to its compute dtype (Keras's autocast,
        unless ``autocast=False``), and under a mixed policy float weights read in the compute
        dtype inside ``call`` (unless created with ``autocast=False``, as normalization
        statistics are)."""
        try:
            policy = policies.get(dtype)
        except (TypeError, ValueError) as error:
            raise type(error)(f"Layer '{self.name}' ({type(self).__name__}): {error}") from None
        self._lm_policy = policy
        self._lm_dtype = jnp.dtype(policy.variable_dtype)
        compute = jnp.dtype(policy.compute_dtype)
        self._lm_autocast_dtype = compute if autocast else None
        self._lm_variable_cast = compute if policy.is_mixed else None

    @property
    def dtype_policy(self) -> policies.DTypePolicy:
        """The layer's ``lm.mixed_precision.DTypePolicy`` (``dtype=``, else the global policy
        when the layer was constructed).

        Example:
            >>> import lamina as lm
            >>> layer = lm.layers.Dense(2, dtype="mixed_bfloat16")
            >>> layer.dtype_policy, layer.dtype, layer.variable_dtype, layer.compute_dtype
            (<DTypePolicy "mixed_bfloat16">, 'float32', 'float32', 'bfloat16')
        """
        policy = self._lm_policy
        return policy if policy is not None else policies.DTypePolicy(self._lm_dtype.name)

    @dtype_policy.setter
    def dtype_policy(self, value) -> None:
        # As Keras: a quantized policy ("int8_from_float32") given to a built float layer
        # quantizes it; otherwise the policy applies to what the layer creates and computes next.
        policy = policies.get(value)
        mode = policy.quantization_mode
        if mode is not None and self.built and self.quantization_mode is None:
            self.quantize(mode, config=policy.quantization_config())
        self._lm_set_policy(policy, autocast=self._lm_autocast_dtype is not None)

    @property
    def dtype(self) -> str:
        """The dtype of the layer's weights (the policy's variable dtype, as in Keras)."""
        return self._lm_dtype.name

    @property
    def variable_dtype(self) -> str:
        """The dtype weights are created in (float32 under the mixed policies)."""
        return self._lm_dtype.name

    @property
    def compute_dtype(self) -> str:
        """The dtype inputs are cast to, and ``call`` computes and answers in (bfloat16 under
        ``"mixed_bfloat16"``)."""
        return self.dtype_policy.compute_dtype

    @property
    def quantization_mode(self) -> str | None:
        """``"int8"``, ``"int4"``... once ``quantize`` ran (the policy says it), else ``None``."""
        policy = self._lm_policy
        return None if policy is None else policy.quantization_mode

    def quantize(self, mode=None, type_check=True, config=None) -> None:
        """Quantize this layer's weights in place; ``Dense``, ``EinsumDense`` and ``Embedding``
        implement it (docs/quantization.md). Other layers raise ``NotImplementedError``, which
        ``model.quantize`` turns into a warning, as Keras does."""
        raise NotImplementedError(f"Layer {type(self).__name__} ('{self.path}') does not have a `quantize` method "
                                  "implemented.")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"

    # -- tracking -------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if not name.startswith("_lm_"):
            old = self.__dict__.get(name)
            if _holds_state(value) or (old is not None and _holds_state(old)):
                if old is not None:
                    self._lm_untrack(old, value)
                _attach(self, value, name)
                state.bump_structure_version(self)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        old = self.__dict__.get(name)
        object.__delattr__(self, name)
        if _holds_state(old):
            self._lm_untrack(old, None)
            state.bump_structure_version(self)

    def _lm_untrack(self, old, new) -> None:
        """Reassigning an attribute forgets the add_weight variables it held (unless kept)."""
        keep = {id(v) for v, _ in _walk(new, "") if isinstance(v, Variable)}
        dropped = {id(v) for v, _ in _walk(old, "") if isinstance(v, Variable)} - keep
        if dropped:
            self._lm_added = [v for v in self._lm_added if id(v) not in dropped]

    def _lm_children(self):
        """``(own_variables, sublayers, state_holders)`` found in the attributes right now.

        A pure query: it gives nothing a parent or a path (``_lm_adopt_children`` does).
        """
        state.note_consulted(self)  # a compiled function that walked here depends on it
        variables, layers, holders = {}, {}, {}
        for attr, value in self.__dict__.items():
            if attr.startswith("_lm_") or not _holds_state(value):
                continue
            for item, _ in _walk(value, attr):
                if isinstance(item, Variable):
                    variables.setdefault(id(item), item)
                elif isinstance(item, Layer):
                    if item is not self:
                        layers.setdefault(id(item), item)
                else:
                    holders.setdefault(id(item), item)
        for v in self._lm_added:
            variables.setdefault(id(v), v)
        own = sorted(variables.values(), key=lambda v: v._serial)  # creation order
        return own, list(layers.values()), list(holders.values())

    def _lm_adopt_children(self) -> None:
        """Give what the attributes hold its place under this layer, where it has none yet: a
        sublayer its parent and path segment, a variable (and a seed generator's or RNN
        state's) its owner and name. Assignment does this; it is repeated after ``build`` and
        before each walk that hands out variables or paths, since a layer appended to a list
        attribute later passes through no assignment."""
        for attr, value in list(self.__dict__.items()):
            if not attr.startswith("_lm_") and _holds_state(value):
                _attach(self, value, attr)

    def _lm_tree(self) -> list:
        """``[(layer, own_variables, state_holders)]`` for this layer and every layer under
        it, depth first, each once; each layer adopts its children before they are listed."""
        seen, found, stack = set(), [], [self]
        while stack:
            layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            layer._lm_adopt_children()
            own, children, holders = layer._lm_children()
            found.append((layer, own, holders))
            stack.extend(reversed(children))
        return found

    def _flatten_layers(self, include_self=True):
        """This layer and every layer under it, depth first, each once."""
        order = [layer for layer, _, _ in self._lm_tree()]
        return order if include_self else order[1:]

    def _gather(self, pick) -> list:
        """De-duplicated variables: ``pick(layer, own_vars, holders)`` for each layer in order."""
        seen, out = set(), []
        for layer, own, holders in self._lm_tree():
            for v in pick(layer, own, holders):
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    @property
    def weights(self) -> list:
        """Own variables in creation order, then each sublayer's (metric and RNG state excluded)."""
        return self._gather(lambda layer, own, holders: own)

    @property
    def trainable_weights(self) -> list:
        """The weights gradients update: trainable variables of layers that are not frozen,
        in ``weights`` order (``trainable_variables`` is the same list)."""
        return self._gather(
            lambda layer, own, holders: [v for v in own if v.trainable] if layer._lm_trainable else []
        )

    @property
    def non_trainable_weights(self) -> list:
        """The other weights (moving statistics, frozen layers' weights), in ``weights`` order."""
        return self._gather(
            lambda layer, own, holders: [v for v in own if not (v.trainable and layer._lm_trainable)]
        )

    @property
    def variables(self) -> list:
        """The layer's state: its weights plus the state of its seed generators and stateful
        RNNs. As in Keras 3, metric state is not here (it is in ``metrics_variables``), nor is
        an optimizer's (``optimizer.variables``).

        Example:
            >>> import lamina as lm
            >>> layer = lm.layers.Dropout(0.5)
            >>> layer.weights, [v.name for v in layer.variables]
            ([], ['seed_generator_state'])
        """
        return self._gather(
            lambda layer, own, holders: own + [v for h in holders if _state_role(h) == "layer"
                                               for v in h._lm_state_variables()]
        )

    trainable_variables = trainable_weights

    @property
    def non_trainable_variables(self) -> list:
        """``variables`` that the optimizer does not train (frozen weights, statistics, seeds)."""
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.variables if id(v) not in trainable]

    @property
    def metrics(self) -> list:
        """The metrics held in attributes of this layer and of the layers under it.

        Example:
            >>> import lamina as lm
            >>> class Scorer(lm.Layer):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.tracker = lm.metrics.Mean(name="score")
            ...     def call(self, x):
            ...         self.tracker.update_state(x)
            ...         return x
            >>> layer = Scorer()
            >>> [m.name for m in layer.metrics], [v.path for v in layer.metrics_variables]
            (['score'], ['score/total', 'score/count'])
            >>> layer.variables
            []
        """
        found = {}
        for _, _, holders in self._lm_tree():
            for h in holders:
                if _state_role(h) == "metric":
                    found.setdefault(id(h), h)
        return list(found.values())

    @property
    def metrics_variables(self) -> list:
        """The state of every metric in ``metrics``, in that order."""
        return _unique([v for metric in self.metrics for v in metric.variables])

    @property
    def trainable(self) -> bool:
        """Whether the layer's weights train; setting it sets every layer underneath too."""
        state.note_consulted(self)
        return self._lm_trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        # Keras semantics: the flag is set on every layer underneath, so a frozen block stays
        # frozen even if one of its sublayers is later used elsewhere.
        layers = self._flatten_layers()
        for layer in layers:
            layer._lm_trainable = bool(value)
        state.bump_structure_version(*layers)

    # -- weights ----------------------------------------------------------------------------
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True,
                   name=None, regularizer=None, constraint=None, autocast=True,
                   aggregation="none", overwrite_with_gradient=False) -> Variable:
        """Create a variable owned by this layer and track it.

        ``initializer`` is an initializer object or name (``"zeros"``, ``"random_normal"``...);
        unset, it is ``"glorot_uniform"`` for a float weight and ``"zeros"`` for any other
        (an integer counter), as in Keras. ``regularizer`` adds a penalty to ``losses``;
        ``constraint`` is applied after each optimizer update. ``dtype`` defaults to the
        layer's variable dtype; ``autocast=False`` keeps a float weight in its own dtype inside
        ``call`` under a mixed policy. ``aggregation`` (Keras's replica aggregation) is
        checked and recorded on the variable; it needs nothing more: under ``jax.sharding``
        every variable has one global value. Keras's ``overwrite_with_gradient=True`` (float8
        training's scales) is refused: lamina's optimizers do not implement it.

        Example:
            >>> import lamina as lm
            >>> layer = lm.layers.Dense(2)
            >>> steps = layer.add_weight(shape=(), dtype="int32", trainable=False, name="steps")
            >>> int(steps.value), str(steps.dtype)
            (0, 'int32')
        """
        if isinstance(shape, str):  # Keras 2's add_weight(name, shape, ...) order
            raise ValueError(f"Layer '{self.path}': add_weight takes the name as a keyword, not first; got "
                             f"add_weight({shape!r}, ...). Use add_weight(shape=..., name={shape!r}).")
        if aggregation not in AGGREGATIONS:  # checked here too, to name the layer
            raise ValueError(f"Layer '{self.path}': add_weight(aggregation=...) must be one of "
                             f"{', '.join(map(repr, AGGREGATIONS))}; got {aggregation!r}.")
        if overwrite_with_gradient:
            raise ValueError(f"Layer '{self.path}': add_weight(overwrite_with_gradient=True) is not supported: "
                             "lamina's optimizers always apply their update rule (Keras uses it for float8 "
                             "training, which lamina does not implement).")
        dtype = jnp.dtype(dtype) if dtype is not None else self._lm_dtype
        if initializer is None:
            initializer = "glorot_uniform" if jnp.issubdtype(dtype, jnp.floating) else "zeros"
        # Placed by the path it has now: an unnamed weight is "<layer path>/variable" until an
        # attribute names it, and a layer built before it joins a model lacks the model's prefix.
        shape = tuple(shape or ())
        layout = placement.layout_for_path(f"{self.path}/{name or 'variable'}", shape)
        variable = Variable(
            initializer, shape=shape, dtype=dtype,
            trainable=trainable, name=name, regularizer=regularizers.get(regularizer),
            constraint=constraints.get(constraint), layout=layout, autocast=autocast, aggregation=aggregation,
        )
        variable._attach(self, name)  # unnamed: named after the attribute it is stored in
        self._lm_added = self._lm_added + [variable]
        state.bump_structure_version(self)
        return variable

    def add_variable(self, shape, initializer, dtype=None, trainable=True, autocast=True,
                     regularizer=None, constraint=None, name=None) -> Variable:
        """``add_weight`` in Keras's ``Layer.add_variable`` argument order."""
        return self.add_weight(shape=shape, initializer=initializer, dtype=dtype, trainable=trainable,
                               name=name, regularizer=regularizer, constraint=constraint, autocast=autocast)

    def count_params(self) -> int:
        """The number of scalars in ``weights``; the layer must be built."""
        if not self.built:
            raise ValueError(f"Layer '{self.path}' is not built yet: call it on data first.")
        return sum(v.size for v in self.weights)

    def get_weights(self) -> list:
        """The ``weights`` as NumPy arrays, in the order ``set_weights`` takes them."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights) -> None:
        """Assign arrays in ``weights`` order; every shape is checked before anything changes."""
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(
                f"Layer '{self.path}' expects {len(mine)} weight arrays "
                f"({[v.name for v in mine]}), got {len(weights)}."
            )
        arrays = [np.asarray(w) for w in weights]
        bad = [
            f"'{v.path}': expected shape {v.shape}, got {a.shape}"
            for v, a in zip(mine, arrays) if tuple(a.shape) != v.shape
        ]
        if bad:
            raise ValueError(f"Layer '{self.path}': set_weights shape mismatch: " + "; ".join(bad))
        for v, a in zip(mine, arrays):
            v.assign(a)

    def save_own_variables(self, store) -> None:
        """Keras's saving hook: put this layer's own state (not its sublayers') into the dict
        ``store``. The default stores its own variables under ``"0"``, ``"1"``, ... (trainable
        first, as Keras). Override it (with ``load_own_variables``) to save arrays that are not
        variables or to name the keys: ``model.save`` and ``save_weights`` then call it and
        write the store under the layer's path (docs/guide.md, "Saving").

        Example:
            >>> import numpy as np, lamina as lm
            >>> layer = lm.layers.Dense(2)
            >>> layer.build((None, 3))
            >>> store = {}
            >>> layer.save_own_variables(store)
            >>> {key: tuple(np.shape(value)) for key, value in store.items()}
            {'0': (3, 2), '1': (2,)}
        """
        keras_hooks.save_default(self, store)

    def load_own_variables(self, store) -> None:
        """Keras's loading hook: restore this layer's own state from ``store``, the dict that
        ``save_own_variables`` filled (its values read back as NumPy arrays). The default checks
        that the keys are ``"0"``, ``"1"``, ... for its own variables and their shapes, then
        assigns them."""
        keras_hooks.load_default(self, store)

    # -- the computation --------------------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create weights from the first input's shape; the default creates nothing."""

    def call(self, *args, **kwargs):
        """The computation; subclasses write it with ``jax.numpy`` (``training`` and
        ``mask`` arguments, when declared, are filled in by ``__call__``)."""
        raise NotImplementedError(f"Layer {type(self).__name__} must implement call().")

    def __call__(self, *args, **kwargs):
        """Run ``call`` as Keras does, in named steps: cast the first input to the compute dtype,
        build on the first call and check ``input_spec``, resolve ``training`` and the masks,
        run ``call`` inside the call context, lay out the outputs as the active distribution says,
        then record output masks and activity losses."""
        if args and type(args[0]) is not _ARRAY_IMPL and contains_symbolic(args[0]):
            return symbolic_call(self, args, kwargs)  # building a Functional graph
        state.note_consulted(self)
        raw_args = args  # masks are looked up on the arrays as given (a cast makes a new array)
        raw_first, first, args = self._lm_cast_inputs(args, kwargs)
        if not self.built:
            self._lm_build_from(first)
        if self.input_spec is not None:
            _check_input_spec(self, first)
        info = _call_info(type(self))
        training = _resolve_training(info, args, kwargs)
        mask = _resolve_masks(info, raw_first, raw_args, kwargs)
        outputs = self._lm_run_call(training, first, args, kwargs)
        if current_distribution.in_use and current_distribution.distribution() is not None:
            outputs = lay_out_output(self.path, outputs)  # a LayoutMap key "<path>/output"
        self._lm_after_call(info, first, mask, outputs)
        return outputs

    def _lm_cast_inputs(self, args, kwargs):
        """The first input (positional, or ``inputs=``) cast to the compute dtype, as Keras's
        autocast does: ``(as given, as cast, args with it)``."""
        if args:
            raw_first = args[0]
            first = _convert_input(raw_first, self._lm_autocast_dtype, self)
            return raw_first, first, (first, *args[1:])
        if "inputs" in kwargs:
            raw_first = kwargs["inputs"]
            first = kwargs["inputs"] = _convert_input(raw_first, self._lm_autocast_dtype, self)
            return raw_first, first, args
        raise TypeError(f"Layer '{self.path}' was called without inputs.")

    def _lm_run_call(self, training, first, args, kwargs):
        """``self.call`` inside the call context: the outermost call's id (which tags
        ``add_loss`` values), ``training`` for the layers inside, variables read in the compute
        dtype under a mixed policy; an error gets a note naming this layer."""
        ctx = context
        if ctx.depth == 0:
            ctx.call_id += 1
        self.__dict__["_lm_last_call_id"] = ctx.call_id
        previous, outer_cast = ctx.training, autocast_state.dtype
        ctx.training = training
        ctx.depth += 1
        if outer_cast is not self._lm_variable_cast:
            autocast_state.dtype = self._lm_variable_cast  # see _lm_set_policy
        try:
            if self.__dict__.get("_lm_remat_mode") is not None:
                return self.rematerialized_call(self.call, *args, **kwargs)(*args, **kwargs)
            return self.call(*args, **kwargs)
        except Exception as error:
            _name_layer_in_error(error, self, first)
            raise
        finally:
            ctx.depth -= 1
            ctx.training = previous
            autocast_state.dtype = outer_cast

    def _lm_after_call(self, info, first, mask, outputs) -> None:
        """The output masks (``compute_mask``) and the activity regularizer's losses."""
        if info.computes_mask or mask is not None and self.supports_masking:
            output_mask = self.compute_mask(first, mask)
            if output_mask is not None:
                _record_output_masks(outputs, output_mask)
        if self.activity_regularizer is not None:
            for output in jax.tree_util.tree_leaves(outputs):
                penalty = self.activity_regularizer(output)
                if output.ndim > 0:  # per sample, as Keras 3 does
                    penalty = penalty / output.shape[0]
                self.add_loss(penalty)

    def rematerialized_call(self, layer_call, *args, **kwargs):
        """``layer_call`` (``call``), rematerialized as the ``lm.RematScope`` active when the
        layer was made says (Keras's rule): ``"full"`` always, ``"list_of_layers"`` when the
        layer's name is listed, ``"larger_than"`` when the output (found from ``args``) has more
        elements than the threshold, ``"activations"`` only the layer's ``activation``; else
        ``layer_call`` unchanged. ``__call__`` uses it; override it to choose otherwise.
        Gradients are unchanged, the intermediate values are recomputed instead of kept."""
        return keras_hooks.rematerialized(self, layer_call, args, kwargs)

    def compute_mask(self, inputs, mask=None):
        """The mask of the output: by default the input's when ``supports_masking``, else none."""
        return mask if self.supports_masking else None

    def _lm_build_from(self, first_input) -> None:
        shapes = jax.tree_util.tree_map(lambda a: tuple(a.shape), first_input)
        try:
            with jax.ensure_compile_time_eval():
                self.build(shapes)
        except Exception as error:
            _name_layer_in_error(error, self, first_input)
            raise
        self.built = True
        self._lm_build_shape = shapes
        self._lm_adopt_children()  # sublayers placed in containers get their paths before they run

    def build_from_shape(self, input_shape) -> None:
        """Build without data (``input_shape`` may hold ``None`` for the batch axis; a list of
        shapes for layers taking several inputs)."""
        if not self.built:
            shape = tuple(input_shape) if _is_shape(input_shape) else input_shape
            with jax.ensure_compile_time_eval():
                self.build(shape)
            self.built = True
            self._lm_build_shape = shape

    def compute_output_shape(self, input_shape):
        """Output shape for ``input_shape`` (``None`` axes allowed), found by tracing ``call``."""
        self.build_from_shape(input_shape)

        def traced_shape(fill):
            spec = jax.ShapeDtypeStruct(tuple(fill if d is None else d for d in input_shape), self.compute_dtype)
            out = abstract_eval(lambda x: self.call(x), spec)  # writes made by call() are dropped
            return jax.tree_util.tree_map(lambda s: s.shape, out)

        first, second = traced_shape(2), traced_shape(3)
        return jax.tree_util.tree_map(
            lambda a, b: tuple(x if x == y else None for x, y in zip(a, b)),
            first, second, is_leaf=lambda s: isinstance(s, tuple),
        )

    def compute_output_spec(self, *args, **kwargs):
        """The outputs' shapes and dtypes for inputs given as ``jax.ShapeDtypeStruct`` (or
        arrays), as a structure of ``jax.ShapeDtypeStruct``: lamina's form of Keras's
        ``KerasTensor`` spec. The call is traced, nothing is computed or changed (an unbuilt
        layer is built).

        Example:
            >>> import jax, lamina as lm
            >>> lm.layers.Dense(4).compute_output_spec(jax.ShapeDtypeStruct((2, 3), "float32"))
            ShapeDtypeStruct(shape=(2, 4), dtype=float32)
        """
        return keras_hooks.output_spec(self, args, kwargs)

    @property
    def input_dtype(self) -> str:
        """The dtype floating inputs are converted to (the compute dtype, as in Keras; an
        ``InputLayer`` says its declared dtype)."""
        return self.__dict__.get("_lm_input_dtype") or self.compute_dtype

    @input_dtype.setter
    def input_dtype(self, value) -> None:
        self._lm_input_dtype = value

    def get_build_config(self) -> dict | None:
        """Keras's hook: what ``build_from_config`` needs to create the weights again,
        ``{"input_shape": <the shape the layer was built for>}`` (``None`` before building).
        Saving keeps an overriding layer's config and gives it back to its ``build_from_config``.

        Example:
            >>> import lamina as lm
            >>> layer = lm.layers.Dense(2)
            >>> layer.build((None, 3))
            >>> layer.get_build_config()
            {'input_shape': (None, 3)}
        """
        shape = self.__dict__.get("_lm_build_shape")
        return {"input_shape": shape} if self.built and shape is not None else None

    def build_from_config(self, config) -> None:
        """Build from ``get_build_config()``'s dict: ``build(config["input_shape"])`` (JSON lists
        taken as shape tuples), or ``build(**config["shapes_dict"])``, as Keras."""
        if not config:
            return
        if "input_shape" in config:
            self.build_from_shape(keras_hooks.shape_from_config(config["input_shape"]))
        elif "shapes_dict" in config:
            shapes = {name: keras_hooks.shape_from_config(shape) for name, shape in config["shapes_dict"].items()}
            with jax.ensure_compile_time_eval():
                self.build(**shapes)
        self.built = True

    @property
    def output(self):
        """The symbolic output of this layer's first call on symbolic inputs (Functional API)."""
        if not self._lm_inbound_nodes:
            raise ValueError(f"Layer '{self.path}' has not been called on symbolic inputs (lm.Input), so it has no output.")
        return self._lm_inbound_nodes[0].outputs

    @property
    def input(self):
        """The symbolic input of this layer's first call on symbolic inputs."""
        if not self._lm_inbound_nodes:
            raise ValueError(f"Layer '{self.path}' has not been called on symbolic inputs (lm.Input), so it has no input.")
        node = self._lm_inbound_nodes[0]
        return node.args[0] if node.args else node.outputs

    # -- losses -----------------------------------------------------------------------------
    def add_loss(self, value) -> None:
        """Add a scalar loss term during ``call``; ``fit`` adds ``losses`` to the training loss."""
        scope = state._thread.scope
        if scope is None and isinstance(value, jax.core.Tracer):
            raise ValueError(
                f"Layer '{self.path}' received a traced value in add_loss() outside lamina's "
                "compiled functions (it would leak out of jax.jit/jax.grad). Compile with "
                "lm.jit or use lm.value_and_grad / stateless_call."
            )
        store = scope.losses if scope is not None else own_loss_store(self)
        store.add(self, self._lm_last_call_id, value)

    @property
    def losses(self) -> list:
        """Losses added during the last outermost call, by this layer and every layer under
        it, plus the weight-regularizer penalties."""
        scope = state._thread.scope
        tag = self._lm_last_call_id
        out = []
        for layer in self._flatten_layers():
            store = scope.losses if scope is not None else layer.__dict__.get("_lm_losses")
            if store is not None:
                out += store.of(layer, tag)
        for v in self.trainable_weights:
            if v.regularizer is not None:
                out.append(v.regularizer(v.value))
        return out

    # -- functional form --------------------------------------------------------------------
    def stateless_call(self, trainable_variables, non_trainable_variables, *args,
                       return_losses=False, **kwargs):
        """Call with the given variable values instead of the stored ones; changes nothing.

        Returns ``(outputs, non_trainable_values)`` (and the losses with
        ``return_losses=True``); the values follow ``trainable_variables`` and
        ``non_trainable_variables`` order (the latter includes seed-generator state).
        """
        if not self.built:
            raise ValueError(f"Layer '{self.path}' must be built before stateless_call().")
        trainable, frozen = self.trainable_variables, self.non_trainable_variables
        for given, mine, kind in ((trainable_variables, trainable, "trainable"),
                                  (non_trainable_variables, frozen, "non-trainable")):
            if len(given) != len(mine):
                raise ValueError(f"Layer '{self.path}' has {len(mine)} {kind} variables, got {len(given)} values.")
        def call_and_collect(*a, **k):
            outputs = self(*a, **k)
            # Read while the call's scope is open: add_loss put this call's losses there
            # (a scope opened afterwards would only see the regularizer penalties).
            return outputs, (self.losses if return_losses else [])

        # Metric updates made by the call are dropped, as in Keras (metric state is not among
        # the non-trainable variables); the scope is given the metrics so that it allows them.
        given = {id(v) for v in trainable + frozen}
        metric_state = [v for v in self.metrics_variables if id(v) not in given]
        pure = state.functionalize(call_and_collect, trainable + frozen + metric_state)
        (outputs, losses), new_values, _ = pure(
            # A Variable among the values stands for its current value (as Keras converts one).
            [v.value if isinstance(v, Variable) else v
             for v in [*trainable_variables, *non_trainable_variables, *metric_state]], *args, **kwargs)
        new_values = new_values[:len(trainable) + len(frozen)]
        result = (outputs, new_values[len(trainable):])
        return result + (losses,) if return_losses else result

    # -- configuration ----------------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor arguments that rebuild this layer (JSON-ready)."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": policies.serialize(self.dtype_policy)}
        if type(self).get_config is Layer.get_config:
            # A subclass without its own get_config: reuse the arguments its __init__ got,
            # as Keras does, when they are plain JSON values.
            captured = {k: v for k, v in self._lm_init_args.items() if k not in config}
            bad = [k for k, v in captured.items() if not _is_json_value(v)]
            if bad:
                raise NotImplementedError(
                    f"Layer {type(self).__name__} was built with arguments {bad} that are not "
                    "plain JSON values; override get_config() to serialize them."
                )
            config.update(captured)
        return config

    @classmethod
    @passes_config_to_constructor
    def from_config(cls, config: dict):
        """Rebuild a layer from ``get_config()`` output."""
        config = dict(config)
        accepted = signature_of(cls.__init__).parameters
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        base = {k: config.pop(k) for k in _BASE_CONFIG_KEYS if k in config and not (takes_kwargs or k in accepted)}
        layer = cls(**config)
        if "name" in base:
            layer._lm_name = base["name"]
        if "trainable" in base:
            layer.trainable = base["trainable"]
        return layer


register_family("lamina.layers", "layer", None, Layer)


# -- helpers ----------------------------------------------------------------------------------


def _marks_built(build):
    """``build`` that runs outside any trace (variables start as real arrays) and then marks
    the layer built, remembering the first shape it was built for."""
    if getattr(build, "_lm_marks_built", False):
        return build

    @functools.wraps(build)
    def build_and_mark(self, *args, **kwargs):
        with jax.ensure_compile_time_eval():
            result = build(self, *args, **kwargs)
        self.built = True
        if self.__dict__.get("_lm_build_shape") is None and args:
            shape = args[0]
            if hasattr(shape, "shape") and hasattr(shape, "dtype"):  # built from an array: its shape
                shape = tuple(shape.shape)
            self.__dict__["_lm_build_shape"] = tuple(shape) if _is_shape(shape) else shape
        return result

    build_and_mark._lm_marks_built = True
    return build_and_mark


Layer.build = _marks_built(Layer.build)
# Saving keeps a build config only where a class says more than the input shape (an override):
# every other layer is built from the model's input shape, as before.
Layer.get_build_config._lm_default_build_config = True
Layer.build_from_config._lm_default_build_config = True


# type -> True (its instances are state), False (they hold none) or _CONTAINER (look inside).
_state_kinds: dict = {}
_CONTAINER = "container"


def _holds_state(value) -> bool:
    kind = _kind_of(type(value))
    if kind is not _CONTAINER:
        return kind
    if isinstance(value, dict):
        return any(_holds_state(item) for item in value.values())
    return any(_holds_state(item) for item in value)


def _kind_of(cls):
    """``_state_kinds``' entry for ``cls``, made on first use. Asked for every attribute set
    and every attribute of every layer walked: what a value that is not a container holds
    depends on its type only, so it is remembered per type."""
    kind = _state_kinds.get(cls)
    if kind is None:
        if issubclass(cls, (Variable, Layer)) or hasattr(cls, "_lm_state_variables"):
            kind = True
        else:
            kind = _CONTAINER if issubclass(cls, (list, tuple, dict)) else False
        _state_kinds[cls] = kind
    return kind


def _state_role(holder) -> str:
    """What a state holder's variables are to the layer holding it: ``"layer"`` (seed
    generators, RNN states: in ``variables``), ``"metric"`` (in ``metrics_variables``) or
    ``"optimizer"`` (in neither; ``optimizer.variables``). A holder class says so in
    ``_lm_state_role``; one that does not holds layer state."""
    return getattr(type(holder), "_lm_state_role", "layer")


def _walk(value, segment) -> list:
    """``[(item, place)]`` for every variable, layer and state holder inside ``value`` (nested
    lists, tuples and dicts), ``place`` being where it sits (``"blocks/0"`` under ``segment``
    ``"blocks"``). Pure: ``_attach`` does the adopting."""
    found = []
    _walk_into(value, segment, found)
    return found


def _walk_into(item, where, found) -> None:
    # A module function, not a closure calling itself: that closure is a reference cycle,
    # left for the garbage collector after each of the many walks a model's tree takes.
    if _kind_of(type(item)) is True:
        found.append((item, where))
    elif isinstance(item, (list, tuple)):
        for i, child in enumerate(item):
            _walk_into(child, f"{where}/{i}", found)
    elif isinstance(item, dict):
        for key, child in item.items():
            _walk_into(child, f"{where}/{key}", found)


def _attach(owner, value, segment) -> None:
    """Adopt what ``value`` (held by ``owner`` at ``segment``) contains: layers get ``owner``
    as parent, variables and layer-state holders' variables get it as owner (first holder
    wins). Metric and optimizer state keeps its own paths (``loss/total``, ``adam/mu/...``)."""
    for item, where in _walk(value, segment):
        if isinstance(item, Variable):
            item._attach(owner, where)
        elif isinstance(item, Layer):
            _adopt(owner, item, where)
        elif _state_role(item) == "layer":
            for v in item._lm_state_variables():
                v._attach(owner, f"{where}/{v.name}")


def _unique(variables) -> list:
    """``variables`` without repeats (by identity: ``==`` is elementwise on variables)."""
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _adopt(parent, child, segment) -> None:
    """Give ``child`` its first parent (its path), refusing cycles."""
    if child._lm_parent is not None and child._lm_parent() is not None:
        return
    ancestor = parent
    while ancestor is not None:
        if ancestor is child:
            return
        ancestor = ancestor._lm_parent() if ancestor._lm_parent is not None else None
    child._lm_parent = weakref.ref(parent)
    child._lm_segment = segment


def _convert_input(x, dtype, layer=None):
    """Arrays in, with floating inputs cast to ``dtype`` (Keras's autocast; None: no cast).
    Input that a float layer cannot compute with (strings, objects, complex) is refused here,
    naming ``layer``: JAX's own errors name neither the layer nor the input."""
    if type(x) is _ARRAY_IMPL and x.dtype == dtype:
        return x  # the common case, on every call: a float array already in the compute dtype
    if isinstance(x, jax.Array):
        if dtype is not None and x.dtype != dtype and x.dtype in _FLOAT_DTYPES:
            return x.astype(dtype)
        _check_input_dtype(x.dtype, dtype, layer)
        return x
    if isinstance(x, Variable):
        return _convert_input(x.value, dtype, layer)
    if isinstance(x, (np.ndarray, np.generic, int, float)) or (
        isinstance(x, (list, tuple)) and x and not any(_is_structure_leaf(i) for i in jax.tree_util.tree_leaves(x))
    ):
        if isinstance(x, (np.ndarray, np.generic)):
            _check_input_dtype(x.dtype, dtype, layer)
        try:
            array = as_jax_array(x)
        except TypeError:  # a list of strings or objects: say so in the layer's words
            _check_input_dtype(np.asarray(x).dtype, dtype, layer)
            raise
        if array.dtype.kind == "c":
            _check_input_dtype(array.dtype, dtype, layer)
        cast = dtype is not None and array.dtype in _FLOAT_DTYPES and array.dtype != dtype
        return array.astype(dtype) if cast else array
    if isinstance(x, (list, tuple, dict)):
        return jax.tree_util.tree_map(lambda leaf: _convert_input(leaf, dtype, layer), x)
    return x


def _check_input_dtype(given, dtype, layer) -> None:
    given = np.dtype(given)
    if given.kind in "biuf":  # the common case, on every call: no further work
        return
    where = f"Layer '{layer.path}' ({type(layer).__name__})" if layer is not None else "A layer"
    # bfloat16 and the other ml_dtypes floats have NumPy kind 'V' too: numeric, accepted.
    if given.kind in "OUS" or (given.kind == "V" and not jnp.issubdtype(given, jnp.number)):
        raise ValueError(
            f"{where} expects numeric input, but got an array of dtype {given} (kind "
            f"'{given.kind}'). Encode strings or Python objects as numbers (e.g. integer ids, "
            "or x.astype('float32') for an object array of numbers) before calling the layer."
        )
    if given.kind == "c" and dtype is not None and dtype in _FLOAT_DTYPES:
        # Let through, complex input makes `predict` return complex numbers while `fit` loses
        # the imaginary part at the first float cast: neither is what a float model means.
        raise ValueError(
            f"{where} computes in {dtype} and does not accept complex input (got dtype {given}). "
            "Pass real input (e.g. jnp.real(x), jnp.abs(x), or real and imaginary parts as "
            "separate features), or give the layer autocast=False if it handles complex values."
        )


def _resolve_training(info, args, kwargs):
    """The call's ``training``: given (positionally or by name) > the enclosing call's > the
    ``call`` signature's default. A ``call`` without a ``training`` parameter still accepts it
    from the caller (as in Keras): it then only sets the context for the layers inside."""
    if info.accepts_training and len(args) > info.training_position:
        return args[info.training_position]  # given positionally: explicit
    training = kwargs.get("training") if info.accepts_training else kwargs.pop("training", None)
    if training is None:
        training = context.training if context.training is not None else info.training_default
    if info.accepts_training:
        kwargs["training"] = bool(training) if training is None else training
    return training


def _resolve_masks(info, raw_first, raw_args, kwargs):
    """The input's mask (given as ``mask=``, else recorded on the input), passed to a ``call``
    that takes ``mask``, and Keras's ``<name>_mask`` arguments filled; returns the mask."""
    mask = kwargs.get("mask") if info.accepts_mask else kwargs.pop("mask", None)
    if mask is None:
        mask = _input_mask(raw_first)
        if mask is not None and info.accepts_mask:
            kwargs["mask"] = mask
    if info.named_masks:
        _fill_named_masks(info.named_masks, raw_args, kwargs)
    return mask


def _input_mask(x):
    """The mask recorded for input ``x``; for a list (tuple) of inputs, the list (tuple) of their
    masks when any has one (Keras's ``tree.map_structure(get_keras_mask, x)``); else ``None``."""
    if isinstance(x, (list, tuple)):
        masks = [get_mask(item) if isinstance(item, jax.Array) else None for item in x]
        return type(x)(masks) if any(m is not None for m in masks) else None
    return get_mask(x) if type(x) is _ARRAY_IMPL or isinstance(x, jax.Array) else None


def _fill_named_masks(named_masks, args, kwargs) -> None:
    """``kwargs["<name>_mask"]``: the mask of argument ``<name>``, unless given (as Keras)."""
    for name, position, mask_name, mask_position in named_masks:
        if kwargs.get(mask_name) is not None or (mask_position is not None and mask_position < len(args)):
            continue
        value = args[position] if position is not None and position < len(args) else kwargs.get(name)
        mask = None if value is None else _input_mask(value)
        if mask is not None:
            kwargs[mask_name] = mask


def _record_output_masks(outputs, output_mask) -> None:
    """Record ``output_mask`` (one mask, or a list with one per output, ``None`` for none) on
    the outputs, in flattened order; as Keras, an output that already has a mask keeps it."""
    if isinstance(outputs, jax.Array) and not isinstance(output_mask, (list, tuple)):
        if get_mask(outputs) is None:
            set_mask(outputs, output_mask)
        return
    is_none = lambda leaf: leaf is None  # noqa: E731 - None entries keep their place
    leaves = jax.tree_util.tree_leaves(outputs, is_leaf=is_none)
    masks = jax.tree_util.tree_leaves(output_mask, is_leaf=is_none)
    for leaf, mask in zip(leaves, masks):
        if mask is not None and isinstance(leaf, jax.Array) and get_mask(leaf) is None:
            set_mask(leaf, mask)


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, int) for d in value)


def _is_structure_leaf(item) -> bool:
    return isinstance(item, (jax.Array, np.ndarray, Variable))


def _check_input_spec(layer, x) -> None:
    shape = tuple(getattr(x, "shape", ()))
    problem = layer.input_spec.problem(shape)
    if problem is not None:
        built = f" (it was built for input shape {layer._lm_build_shape})" if layer._lm_build_shape else ""
        raise ValueError(
            f"Input to layer '{layer.path}' ({type(layer).__name__}) is incompatible: expected "
            f"{layer.input_spec.describe()}{built}, got input of shape {shape}."
        )


def _name_layer_in_error(error, layer, first_input) -> None:
    """Add, once (at the innermost layer), which layer failed and on what input."""
    if getattr(error, "_lm_layer_named", False):
        return
    try:
        shape = jax.tree_util.tree_map(lambda a: tuple(a.shape), first_input)
    except Exception:
        shape = type(first_input).__name__
    built = f"; it was built for input shape {layer._lm_build_shape}" if layer._lm_build_shape else ""
    error.add_note(
        f"lamina: raised in layer '{layer.path}' ({type(layer).__name__}) called on input of "
        f"shape {shape}{built}."
    )
    error._lm_layer_named = True


class _CallInfo:
    """What ``call``'s signature says about ``training`` (computed once per class)."""

    __slots__ = ("accepts_training", "training_default", "training_position", "accepts_mask", "computes_mask",
                 "named_masks")

    def __init__(self, cls):
        call = cls.call
        self.accepts_mask = "mask" in inspect.signature(call).parameters
        self.computes_mask = cls.compute_mask is not Layer.compute_mask
        params = list(inspect.signature(call).parameters.values())[1:]  # without self
        # Keras's `<name>_mask` arguments: (tensor argument, its position, mask argument, its position).
        positions = {p.name: i if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) else None
                     for i, p in enumerate(params)}
        self.named_masks = tuple(
            (name, position, f"{name}_mask", positions[f"{name}_mask"])
            for name, position in positions.items() if f"{name}_mask" in positions
        )
        param = next((p for p in params if p.name == "training"), None)
        self.accepts_training = param is not None
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.training_position = params.index(param) if param is not None and param.kind in positional else 1 << 30
        default = None if param is None else param.default
        # None (no opinion) lets inner layers fall back to their own defaults.
        self.training_default = None if default is inspect.Parameter.empty else default


_call_infos: dict = {}


def _call_info(cls) -> _CallInfo:
    info = _call_infos.get(cls)
    if info is None:
        info = _call_infos[cls] = _CallInfo(cls)
    return info


def _bind_init_args(cls, args, kwargs) -> dict:
    table = _init_tables.get(cls.__init__)
    if table is None:
        table = _init_tables[cls.__init__] = _InitTable(signature_of(cls.__init__))
    if table.simple:  # every layer made pays this: Signature.bind_partial costs ~10 us
        return table.bind(args, kwargs)
    signature = signature_of(cls.__init__)
    try:
        bound = signature.bind_partial(None, *args, **kwargs)
    except TypeError:
        return {}
    arguments = dict(bound.arguments)
    arguments.pop(next(iter(signature.parameters)), None)  # self
    for name, param in signature.parameters.items():
        if param.kind is param.VAR_KEYWORD and name in arguments:
            arguments.update(arguments.pop(name))
        elif param.kind is param.VAR_POSITIONAL:
            arguments.pop(name, None)
    return arguments


class _InitTable:
    """``Signature.bind_partial`` of an ``__init__`` without positional-only parameters, its
    ``**kwargs`` flattened and its ``*args`` dropped, as ``_bind_init_args`` gives it."""

    __slots__ = ("simple", "self_name", "positional", "named", "takes_args", "takes_kwargs")

    def __init__(self, signature):
        params = list(signature.parameters.values())
        self_param, params = (params[0].name if params else None), params[1:]
        kinds = [p.kind for p in params]
        self.simple = (self_param is not None and signature.parameters[self_param].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
                       and inspect.Parameter.POSITIONAL_ONLY not in kinds)
        self.self_name = self_param
        self.positional = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
        self.named = tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        self.takes_args = inspect.Parameter.VAR_POSITIONAL in kinds
        self.takes_kwargs = inspect.Parameter.VAR_KEYWORD in kinds

    def bind(self, args, kwargs) -> dict:
        if len(args) > len(self.positional) and not self.takes_args:
            return {}  # bind_partial: too many positional arguments
        arguments = dict(zip(self.positional, args))
        if not kwargs:
            return arguments
        if self.self_name in kwargs or any(name in arguments for name in kwargs):
            return {}  # bind_partial: multiple values for an argument
        for name in self.named:  # in signature order, as bind_partial orders them
            if name in kwargs:
                arguments[name] = kwargs[name]
        if len(arguments) - min(len(args), len(self.positional)) < len(kwargs):
            if not self.takes_kwargs:
                return {}  # bind_partial: an unexpected keyword argument
            for name, value in kwargs.items():
                arguments.setdefault(name, value)
        return arguments


_init_tables: dict = {}


def _is_json_value(value) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v) for k, v in value.items())
    return False


__all__ = ["InputSpec", "Layer"]
