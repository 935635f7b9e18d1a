"""One checker that every built-in layer goes through (issue: built-in layers).

``check_layer`` builds the lamina layer and the Keras 3 layer of the same configuration on the
same input, copies Keras's weights into lamina, and asserts:
- outputs equal Keras's (rtol 1e-5 in float32 by default);
- gradients of a random projection of the output w.r.t. the inputs and every trainable weight
  are finite and equal Keras's;
- the output shape equals ``compute_output_shape`` (with a ``None`` batch axis);
- ``from_config(get_config())`` rebuilds an equal config, and with the same weights the same
  outputs;
- eager and ``lm.jit`` calls give the same numbers.

Usage (in a test):

    check_layer(
        lambda: lm.layers.Dense(3, activation="relu"),
        lambda keras: keras.layers.Dense(3, activation="relu"),
        input_shape=(4, 5),
    )
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import lamina as lm


def random_input(shape, dtype="float32", seed=0, low=None, high=None):
    rng = np.random.default_rng(seed)
    if np.issubdtype(np.dtype(dtype), np.integer):
        return rng.integers(low or 0, high or 10, size=shape).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


def _as_tuple_inputs(inputs):
    return inputs if isinstance(inputs, (list, tuple)) else None


def _none_batch(shape):
    return (None, *shape[1:])


def _shapes_match(expected, actual) -> bool:
    if isinstance(expected, (list, tuple)) and expected and isinstance(expected[0], (list, tuple)):
        return len(expected) == len(actual) and all(_shapes_match(e, a) for e, a in zip(expected, actual))
    return len(expected) == len(actual) and all(e is None or a is None or e == a for e, a in zip(expected, actual))


def check_layer(make_lamina, make_keras, input_shape=None, *, inputs=None, keras=None, call_kwargs=None,
                training=False, rtol=1e-5, atol=1e-6, grad_rtol=None, grad_atol=None,
                check_grads=True, check_output_shape=True, seed=0):
    """Run the whole check; returns ``(lamina_layer, outputs)`` for extra assertions.

    ``inputs`` (an array, or a list of arrays for merging layers) overrides ``input_shape``.
    ``make_keras(keras)`` receives the ``keras`` module.
    """
    if keras is None:
        import keras  # noqa: PLC0415 - the reference, imported only where it is used
    call_kwargs = dict(call_kwargs or {})
    if inputs is None:
        inputs = random_input(input_shape, seed=seed)
    multi = _as_tuple_inputs(inputs)
    inputs = [np.asarray(a) for a in multi] if multi is not None else np.asarray(inputs)
    jnp_inputs = [jnp.asarray(a) for a in inputs] if multi is not None else jnp.asarray(inputs)

    reference = make_keras(keras)
    expected = np.asarray(reference(inputs, training=training, **call_kwargs) if _takes_training(reference)
                          else reference(inputs, **call_kwargs))
    layer = make_lamina()
    layer(jnp_inputs, training=training, **call_kwargs)  # build
    layer.set_weights(reference.get_weights())
    outputs = np.asarray(layer(jnp_inputs, training=training, **call_kwargs))

    np.testing.assert_allclose(outputs, expected, rtol=rtol, atol=atol, err_msg=f"{layer.name}: outputs differ from Keras")

    if check_output_shape:
        shape_in = [_none_batch(a.shape) for a in inputs] if multi is not None else _none_batch(inputs.shape)
        declared = layer.compute_output_shape(shape_in)
        assert _shapes_match(tuple(declared), outputs.shape), (
            f"{layer.name}: compute_output_shape {declared} vs actual {outputs.shape}"
        )

    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config, f"{layer.name}: config round trip changed the config"
    rebuilt(jnp_inputs, training=training, **call_kwargs)
    rebuilt.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(rebuilt(jnp_inputs, training=training, **call_kwargs)), outputs,
                               rtol=1e-6, atol=1e-7, err_msg=f"{layer.name}: from_config(get_config()) differs")

    compiled = lm.jit(lambda x: layer(x, training=training, **call_kwargs))
    np.testing.assert_allclose(np.asarray(compiled(jnp_inputs)), outputs, rtol=1e-5, atol=1e-6,
                               err_msg=f"{layer.name}: lm.jit output differs from eager")

    if check_grads:
        _check_gradients(layer, reference, jnp_inputs, training, call_kwargs, seed,
                         grad_rtol or max(rtol, 1e-5) * 10, grad_atol or atol * 10)
    return layer, outputs


def _takes_training(keras_layer) -> bool:
    import inspect  # noqa: PLC0415

    return "training" in inspect.signature(keras_layer.call).parameters


def _check_gradients(layer, reference, inputs, training, call_kwargs, seed, rtol, atol):
    """d/d(inputs, weights) of sum(cotangent * output): finite and equal to Keras's."""
    float_inputs = jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a: jnp.issubdtype(a.dtype, jnp.floating), inputs))
    out = layer(inputs, training=training, **call_kwargs)
    cotangent = jnp.asarray(random_input(out.shape, seed=seed + 1))

    def lamina_objective(trainable, x):
        y, _ = layer.stateless_call(trainable, [v.value for v in layer.non_trainable_variables], x,
                                    training=training, **call_kwargs)
        return jnp.sum(cotangent * y)

    keras_kwargs = dict(call_kwargs)
    if _takes_training(reference):
        keras_kwargs["training"] = training

    def keras_objective(trainable, x):
        y, _ = reference.stateless_call(trainable, [v.value for v in reference.non_trainable_variables], x, **keras_kwargs)
        return jnp.sum(cotangent * y)

    argnums = (0, 1) if float_inputs else (0,)
    # Compiled: op-by-op eager gradients would cost dozens of small XLA compiles per check.
    mine = jax.jit(jax.grad(lamina_objective, argnums=argnums))([v.value for v in layer.trainable_variables], inputs)
    theirs = jax.jit(jax.grad(keras_objective, argnums=argnums))([v.value for v in reference.trainable_variables], inputs)
    for a, b in zip(jax.tree_util.tree_leaves(mine), jax.tree_util.tree_leaves(theirs)):
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
}


def check_arguments_and_config(ours, theirs):
    """Same constructor arguments in the same order as the Keras class, the same config keys
    and plain values, and a config that survives JSON (as saved files hold it)."""
    import inspect  # noqa: PLC0415
    import json  # noqa: PLC0415

    def arguments(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "name", "kwargs")]

    assert arguments(ours) == arguments(theirs)
    positional = POSITIONAL_ARGUMENTS.get(ours.__name__, ())
    mine = ours(*positional).get_config()
    reference = theirs(*positional).get_config()
    assert set(mine) == set(reference)
    for key, value in reference.items():
        if key not in ("name", "dtype") and not isinstance(value, dict):
            assert mine[key] == value, key
    assert ours.from_config(json.loads(json.dumps(mine))).get_config() == mine
