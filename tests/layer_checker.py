"""One checker that every built-in layer goes through (issue: built-in layers).

``check_layer`` builds the lamina layer and the Keras 3 layer of the same configuration on the
same inputs, copies Keras's weights into lamina, and asserts:
- outputs equal Keras's (rtol 1e-5 in float32 by default), each output of a tuple/list output;
- output masks equal Keras's (``_keras_mask`` of each output: both none, or equal), so a mask
  given to the layer (``input_masks``, ``mask=``) or made by it (``Embedding(mask_zero=True)``)
  propagates as in Keras;
- gradients of the sum over outputs of a random projection of each output, w.r.t. every
  floating input (positional or keyword) and every trainable weight, are finite and equal
  Keras's;
- each output's shape equals ``compute_output_shape`` (with a ``None`` batch axis);
- saved and loaded (config as JSON through ``lm.saving.serialize``/``deserialize``, variables
  through a safetensors file and ``load_weights``'s checks), it has an equal config and gives
  the same outputs;
- eager and ``lm.jit`` calls give the same numbers.

Usage (in a test):

    check_layer(
        lambda: lm.layers.Dense(3, activation="relu"),
        lambda keras: keras.layers.Dense(3, activation="relu"),
        input_shape=(4, 5),
    )
    # several inputs: MultiHeadAttention(query, value, key=...) with masks on query and value
    check_layer(lambda: lm.layers.MultiHeadAttention(2, 3), lambda k: k.layers.MultiHeadAttention(2, 3),
                input_shape=(2, 4, 6), args=[(2, 5, 7)], call_kwargs={"key": key_array},
                input_masks={0: query_mask, 1: value_mask})
    # a list input (merging layers): input_shape=[(2, 3), (2, 3)] or inputs=[a, b]

Where each built-in layer goes through it: ``CHECKED_IN`` in tests/layers/test_layer_checker.py
(a test fails when ``lm.layers`` gains a layer without a case there).
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

import lamina as lm
from lamina.layers.masking import get_mask, set_mask


def random_input(shape, dtype="float32", seed=0, low=None, high=None):
    rng = np.random.default_rng(seed)
    if np.issubdtype(np.dtype(dtype), np.integer):
        return rng.integers(low or 0, high or 10, size=shape).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


def _is_shape(value) -> bool:
    return isinstance(value, tuple) and all(d is None or isinstance(d, int) for d in value)


def _is_array(value) -> bool:
    return isinstance(value, (np.ndarray, jax.Array))


def _is_tensor_structure(value) -> bool:
    """An array, or a non-empty list/tuple of arrays (``initial_state=[h, c]``, merge inputs)."""
    if _is_array(value):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(_is_array(v) for v in value)


def _as_input(value, seed):
    """An input given as an array (kept), a list of arrays, a shape (random floats) or a list
    of shapes (a list input)."""
    if _is_shape(value):
        return random_input(value, seed=seed)
    if isinstance(value, (list, tuple)) and value and all(_is_shape(v) for v in value):
        return [random_input(s, seed=seed + 10 * i) for i, s in enumerate(value)]
    if isinstance(value, (list, tuple)):
        return [np.asarray(v) for v in value]
    return np.asarray(value)


def _none_batch(structure):
    if _is_array(structure):
        return (None, *structure.shape[1:])
    return [_none_batch(s) for s in structure]


def _flat_shapes(declared):
    """The shapes in a ``compute_output_shape`` result, in output order."""
    if _is_shape(tuple(declared)) and not any(isinstance(d, (list, tuple)) for d in declared):
        return [tuple(declared)]
    return [s for item in declared for s in _flat_shapes(item)]


def _shape_matches(expected, actual) -> bool:
    return len(expected) == len(actual) and all(e is None or e == a for e, a in zip(expected, actual))


def _leaves(outputs):
    return jax.tree_util.tree_leaves(outputs)


def _takes_training(keras_layer) -> bool:
    return "training" in inspect.signature(keras_layer.call).parameters


class _Call:
    """The inputs of one check: ``positional`` (first input, then ``args``), ``tensor_kwargs``
    (array-valued keyword arguments), ``static`` (the other keyword arguments) and the masks
    attached to inputs (``input_masks``: position or keyword name -> mask, or a list of masks
    for a list input), re-attached before every call, since Keras's MultiHeadAttention
    removes the masks of its inputs."""

    def __init__(self, first, args, call_kwargs, input_masks, training):
        self.positional = [first, *args]
        self.tensor_kwargs = {k: v for k, v in call_kwargs.items() if _is_tensor_structure(v)}
        self.static = {k: v for k, v in call_kwargs.items() if k not in self.tensor_kwargs}
        self.masks = dict(input_masks or {})
        self.training = training

    def tensors(self, convert):
        """``(positional, tensor_kwargs)`` converted by ``convert`` (structures kept)."""
        return jax.tree_util.tree_map(convert, (self.positional, self.tensor_kwargs))

    def attach(self, positional, tensor_kwargs, set_one):
        for where, mask in self.masks.items():
            target = positional[where] if isinstance(where, int) else tensor_kwargs[where]
            if isinstance(target, (list, tuple)):
                for item, item_mask in zip(target, mask):
                    if item_mask is not None:
                        set_one(item, jnp.asarray(item_mask))
            elif mask is not None:
                set_one(target, jnp.asarray(mask))

    def lamina(self, layer, positional, tensor_kwargs):
        self.attach(positional, tensor_kwargs, set_mask)
        return layer(*positional, training=self.training, **tensor_kwargs, **self.static)

    def lamina_stateless(self, layer, trainable, non_trainable, positional, tensor_kwargs):
        self.attach(positional, tensor_kwargs, set_mask)
        return layer.stateless_call(trainable, non_trainable, *positional, training=self.training,
                                    **tensor_kwargs, **self.static)[0]

    def keras_kwargs(self, reference, tensor_kwargs):
        kwargs = {**tensor_kwargs, **self.static}
        if _takes_training(reference):
            kwargs["training"] = self.training
        return kwargs

    def keras(self, reference, keras):
        from keras.src.backend import set_keras_mask  # noqa: PLC0415

        positional, tensor_kwargs = self.tensors(lambda a: keras.ops.convert_to_tensor(a))
        self.attach(positional, tensor_kwargs, set_keras_mask)
        return reference(*positional, **self.keras_kwargs(reference, tensor_kwargs))

    def keras_stateless(self, reference, trainable, non_trainable, positional, tensor_kwargs):
        """Keras's ``stateless_call``, but through ``__call__`` (its ``stateless_call`` runs
        ``call`` directly, which would not pass the attached masks on)."""
        from keras.src.backend import StatelessScope, set_keras_mask  # noqa: PLC0415

        self.attach(positional, tensor_kwargs, set_keras_mask)
        mapping = list(zip(reference.trainable_variables, trainable))
        mapping += list(zip(reference.non_trainable_variables, non_trainable))
        with StatelessScope(state_mapping=mapping):
            return reference(*positional, **self.keras_kwargs(reference, tensor_kwargs))


def check_layer(make_lamina, make_keras, input_shape=None, *, inputs=None, args=(), call_kwargs=None,
                input_masks=None, keras=None, training=False, rtol=1e-5, atol=1e-6, grad_rtol=None,
                grad_atol=None, check_grads=True, check_output_shape=True, shaped_outputs=None,
                masked_outputs=None, seed=0):
    """Run the whole check; returns ``(lamina_layer, outputs)`` for extra assertions.

    - ``input_shape`` (a shape, or a list of shapes for a list input) or ``inputs`` (an array,
      or a list of arrays) is the first positional input;
    - ``args``: further positional inputs, each a shape (random floats) or an array
      (``MultiHeadAttention``'s ``value``, a cell's ``states`` list);
    - ``call_kwargs``: keyword arguments; arrays (and lists of arrays, ``initial_state``) are
      inputs (traced under ``lm.jit``, differentiated when floating), the rest pass as given;
    - ``input_masks``: masks attached to inputs (as ``Embedding(mask_zero=True)`` leaves them)
      in both libraries: ``{0: mask}`` for the first input (a list of masks or ``None`` for a
      list input), ``{1: mask}`` for ``args[0]``, ``{"key": mask}`` for a keyword input;
    - ``shaped_outputs``: how many leading outputs ``compute_output_shape`` describes (default:
      all; ``MultiHeadAttention``'s scores depend on a call argument it does not take);
    - ``masked_outputs``: indices of the outputs whose masks are compared (default: all).

    ``make_keras(keras)`` receives the ``keras`` module.
    """
    if keras is None:
        import keras  # noqa: PLC0415 - the reference, imported only where it is used
    from keras.src.backend import get_keras_mask  # noqa: PLC0415

    first = _as_input(inputs if inputs is not None else input_shape, seed)
    extra = [_as_input(a, seed + 1 + i) for i, a in enumerate(args)]
    call = _Call(first, extra, dict(call_kwargs or {}), input_masks, training)

    reference = make_keras(keras)
    keras_outputs = call.keras(reference, keras)
    expected = [np.asarray(y) for y in _leaves(keras_outputs)]
    expected_masks = [get_keras_mask(y) for y in _leaves(keras_outputs)]

    layer = make_lamina()
    call.lamina(layer, *call.tensors(jnp.asarray))  # build
    layer.set_weights(reference.get_weights())
    outputs = call.lamina(layer, *call.tensors(jnp.asarray))
    leaves = _leaves(outputs)
    name = layer.name

    assert len(leaves) == len(expected), f"{name}: {len(leaves)} outputs, Keras gives {len(expected)}"
    for i, (mine, theirs) in enumerate(zip(leaves, expected)):
        assert mine.shape == theirs.shape, f"{name}: output {i} has shape {mine.shape}, Keras's {theirs.shape}"
        np.testing.assert_allclose(np.asarray(mine), theirs, rtol=rtol, atol=atol,
                                   err_msg=f"{name}: output {i} differs from Keras")

    for i in range(len(leaves)) if masked_outputs is None else masked_outputs:
        mine, theirs = get_mask(leaves[i]), expected_masks[i]
        if theirs is None:
            assert mine is None, f"{name}: output {i} has a mask, Keras's has none"
        else:
            assert mine is not None, f"{name}: output {i} has no mask, Keras's has one"
            np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs),
                                          err_msg=f"{name}: output {i} mask differs from Keras")

    if check_output_shape:
        _check_output_shapes(layer, call, leaves, shaped_outputs)

    config = layer.get_config()
    rebuilt = _saved_and_loaded(layer, lambda copy: call.lamina(copy, *call.tensors(jnp.asarray)))
    assert rebuilt.get_config() == config, f"{name}: config round trip changed the config"
    for mine, theirs in zip(_leaves(call.lamina(rebuilt, *call.tensors(jnp.asarray))), leaves):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name}: the saved and loaded layer differs")

    compiled = lm.jit(lambda positional, tensor_kwargs: call.lamina(layer, positional, tensor_kwargs))
    for mine, theirs in zip(_leaves(compiled(*call.tensors(jnp.asarray))), leaves):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: lm.jit output differs from eager")

    if check_grads:
        _check_gradients(layer, reference, call, leaves, seed, grad_rtol or max(rtol, 1e-5) * 10,
                         grad_atol or atol * 10)
    return layer, outputs


def _saved_and_loaded(layer, build):
    """The layer through the saving path: its config serialized to JSON text and deserialized
    through the registry, ``build(copy)`` run, then its variables written to a safetensors
    file and loaded back with the same checks ``load_weights`` makes."""
    from lamina.saving import weights as weights_io
    from lamina.saving.safetensors_reader import MappedSafetensorsFile

    text = json.dumps(lm.saving.serialize(layer))
    # A test's own layer class is not registered: name it, as a user would in custom_objects.
    copy = lm.saving.deserialize(json.loads(text), custom_objects={lm.saving.get_registered_name(type(layer)): type(layer)})
    build(copy)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "layer.safetensors")
        weights_io.write_safetensors(path, weights_io.model_variables(layer))
        with MappedSafetensorsFile(path) as view:
            weights_io.check_and_assign(weights_io.model_variables(copy), view, where=layer.name)
    return copy


def _check_output_shapes(layer, call, leaves, shaped_outputs):
    """``compute_output_shape(first, *args, <kw>_shape=...)`` against each output's shape."""
    positional = [_none_batch(a) for a in call.positional]
    accepted = inspect.signature(layer.compute_output_shape).parameters
    shape_kwargs = {f"{k}_shape": _none_batch(v) for k, v in call.tensor_kwargs.items() if f"{k}_shape" in accepted}
    declared = _flat_shapes(layer.compute_output_shape(*positional, **shape_kwargs))
    count = len(leaves) if shaped_outputs is None else shaped_outputs
    assert len(declared) == count, (
        f"{layer.name}: compute_output_shape gives {len(declared)} shapes for {count} outputs"
    )
    for i, (shape, leaf) in enumerate(zip(declared, leaves)):
        assert _shape_matches(shape, leaf.shape), (
            f"{layer.name}: compute_output_shape {shape} vs actual {leaf.shape} (output {i})"
        )


def _check_gradients(layer, reference, call, outputs, seed, rtol, atol):
    """d/d(floating inputs, weights) of sum_i sum(cotangent_i * output_i): finite and equal to Keras's."""
    cotangents = [jnp.asarray(random_input(y.shape, seed=seed + 1 + i)) for i, y in enumerate(outputs)]
    leaves, treedef = jax.tree_util.tree_flatten(call.tensors(jnp.asarray))
    floating = [i for i, a in enumerate(leaves) if jnp.issubdtype(a.dtype, jnp.floating)]

    def rebuild(values):
        filled = list(leaves)
        for i, value in zip(floating, values):
            filled[i] = value
        return jax.tree_util.tree_unflatten(treedef, filled)

    def project(y):
        return sum(jnp.sum(c * leaf) for c, leaf in zip(cotangents, _leaves(y)))

    lamina_frozen = [v.value for v in layer.non_trainable_variables]
    keras_frozen = [v.value for v in reference.non_trainable_variables]

    def lamina_objective(trainable, values):
        return project(call.lamina_stateless(layer, trainable, lamina_frozen, *rebuild(values)))

    def keras_objective(trainable, values):
        return project(call.keras_stateless(reference, trainable, keras_frozen, *rebuild(values)))

    values = [leaves[i] for i in floating]
    # Compiled: op-by-op eager gradients would cost dozens of small XLA compiles per check.
    mine = jax.jit(jax.grad(lamina_objective, argnums=(0, 1)))([v.value for v in layer.trainable_variables], values)
    theirs = jax.jit(jax.grad(keras_objective, argnums=(0, 1)))([v.value for v in reference.trainable_variables],
                                                                values)
    mine, theirs = _leaves(mine), _leaves(theirs)
    assert len(mine) == len(theirs), f"{layer.name}: {len(mine)} gradients, Keras gives {len(theirs)}"
    for a, b in zip(mine, theirs):
        a, b = np.asarray(a), np.asarray(b)
        assert np.all(np.isfinite(a)), f"{layer.name}: non-finite gradient"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{layer.name}: gradient differs from Keras")


# Positional constructor arguments for layers that require some (the rest take none).
POSITIONAL_ARGUMENTS = {
    "Conv1D": (2, 3), "Conv2D": (2, 3), "Conv3D": (2, 3), "Conv1DTranspose": (2, 3),
    "Conv2DTranspose": (2, 3), "Conv3DTranspose": (2, 3), "DepthwiseConv1D": (3,),
    "DepthwiseConv2D": (3,), "SeparableConv1D": (2, 3), "SeparableConv2D": (2, 3),
    "AveragePooling1D": (2,), "AveragePooling2D": (2,), "AveragePooling3D": (2,),
    "Reshape": ((2, -1),), "Permute": ((2, 1),), "RepeatVector": (2,),
    **{f"Adaptive{kind}Pooling{d}D": (2,) for kind in ("Average", "Max") for d in (1, 2, 3)},
}


def check_arguments_and_config(ours, theirs, args=None, kwargs=None, *, extra_arguments=(), extra_keys=(),
                               compare_dicts=False):
    """Same constructor arguments in the same order as the Keras class (plus
    ``extra_arguments``, which Keras takes through ``**kwargs``), the same config keys (plus
    ``extra_keys``) and plain values (dict values too with ``compare_dicts``), and a config
    that survives JSON (as saved files hold it). Both are made with ``args`` and ``kwargs``
    (default: ``POSITIONAL_ARGUMENTS``); returns both configs."""
    import json  # noqa: PLC0415

    def arguments(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "name", "kwargs")]

    assert arguments(ours) == arguments(theirs) + list(extra_arguments)
    args = POSITIONAL_ARGUMENTS.get(ours.__name__, ()) if args is None else args
    mine = ours(*args, **(kwargs or {})).get_config()
    reference = theirs(*args, **(kwargs or {})).get_config()
    assert set(reference) <= set(mine) and set(mine) - set(reference) == set(extra_keys)
    for key, value in reference.items():
        if key not in ("name", "dtype") and (compare_dicts or not isinstance(value, dict)):
            assert mine[key] == value, key
    assert ours.from_config(json.loads(json.dumps(mine))).get_config() == mine
    return mine, reference


def check_seeded_draws(layers, x):
    """Random layers called in training inside one ``lm.jit`` step: each call draws anew (the
    seed generators are state) and the same seed states repeat the draws. Returns the step."""
    seeds = [layer.seed_generator for layer in layers]
    initial = [np.asarray(seed.state.value) for seed in seeds]
    step = lm.jit(lambda v: [layer(v, training=True) for layer in layers])
    first, second = step(x), step(x)
    for seed, state in zip(seeds, initial):
        seed.state.assign(state)
    for layer, a, b, again in zip(layers, first, second, step(x)):
        assert not np.allclose(np.asarray(a), np.asarray(b)), layer.name
        np.testing.assert_array_equal(np.asarray(again), np.asarray(a))
    return step
