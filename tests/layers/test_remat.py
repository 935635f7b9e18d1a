"""lm.remat, lm.RematScope and Layer.rematerialized_call (Keras 3's rematerialization) on jax.checkpoint."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

X = np.linspace(-1, 1, 24, dtype="float32").reshape(4, 6)


def _block(scope=None):
    lm.random.set_seed(3)
    if scope is None:
        layers = [lm.layers.Dense(8, activation="tanh", name="first"), lm.layers.BatchNormalization(name="norm"),
                  lm.layers.Dropout(0.25, name="drop"), lm.layers.Dense(2, name="last")]
    else:
        with scope:
            layers = [lm.layers.Dense(8, activation="tanh", name="first"), lm.layers.BatchNormalization(name="norm"),
                      lm.layers.Dropout(0.25, name="drop"), lm.layers.Dense(2, name="last")]
    return lm.Sequential([lm.Input((6,)), *layers])


def _loss_grads_and_jaxpr(model):
    """Loss, gradients and the new non-trainable state of one training-mode pass, and its jaxpr."""
    trainable, other = model.trainable_variables, model.non_trainable_variables

    def loss(trainable_values, other_values, x):
        out, new_other, losses = model.stateless_call(trainable_values, other_values, x, training=True,
                                                      return_losses=True)
        return jnp.mean(out ** 2), new_other

    args = ([v.value for v in trainable], [v.value for v in other], X)
    grad_fn = jax.value_and_grad(loss, has_aux=True)
    (value, new_other), grads = jax.jit(grad_fn)(*args)  # one program, not an eager op each
    return value, grads, new_other, str(jax.make_jaxpr(grad_fn)(*args))


@pytest.fixture(scope="module")
def plain():
    return _loss_grads_and_jaxpr(_block())


@pytest.mark.parametrize("scope", [lm.RematScope(mode="full"), lm.RematScope(mode="activations"),
                                   lm.RematScope(mode="list_of_layers", layer_names=["first", "norm"]),
                                   lm.RematScope(mode="larger_than", output_size_threshold=16)],
                         ids=lambda s: s.mode)
def test_rematerialized_layers_give_the_same_numbers_and_checkpoint(scope, plain):
    rematerialized = _block(scope)
    value, grads, state, jaxpr = plain
    r_value, r_grads, r_state, r_jaxpr = _loss_grads_and_jaxpr(rematerialized)
    np.testing.assert_allclose(r_value, value, rtol=1e-6)
    for a, b in zip(r_grads + r_state, grads + state):  # BatchNorm statistics and seeds move alike
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert "remat" not in jaxpr and "checkpoint" not in jaxpr
    assert "remat" in r_jaxpr or "checkpoint" in r_jaxpr


def test_scope_is_read_when_the_layer_is_made():
    with lm.RematScope(mode="list_of_layers", layer_names=["big"]):
        big, small = lm.layers.Dense(4, name="big"), lm.layers.Dense(4, name="small")
        with lm.RematScope(mode=None):
            off = lm.layers.Dense(4, name="big")
    assert big.rematerialized_call(big.call) != big.call
    assert small.rematerialized_call(small.call) == small.call and off.rematerialized_call(off.call) == off.call
    large = lm.RematScope(mode="larger_than", output_size_threshold=10)
    with large:
        wide, narrow = lm.layers.Dense(8), lm.layers.Dense(2)
    x = jnp.ones((2, 3))
    wide.build(x.shape)
    narrow.build(x.shape)
    assert wide.rematerialized_call(wide.call, x) != wide.call  # 16 outputs > 10
    assert narrow.rematerialized_call(narrow.call, x) == narrow.call  # 4 outputs
    with pytest.raises(ValueError, match="Invalid mode 'everything'"):
        lm.RematScope(mode="everything")


def test_remat_of_a_stateful_function_in_fit_and_lm_jit():
    class Scaled(lm.Layer):
        def __init__(self):
            super().__init__()
            self.scaled = lm.remat(self.inner)

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")
            self.calls = self.add_weight(shape=(), dtype="int32", trainable=False)

        def inner(self, x):
            self.calls.assign_add(1)
            self.add_loss(jnp.sum(self.w ** 2) * 0.01)
            return jnp.sin(x * self.w)

        def call(self, x):
            return self.scaled(x)

    model = lm.Sequential([lm.Input((6,)), Scaled(), lm.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(X, np.ones((4, 1), "float32"), batch_size=2, epochs=1, verbose=0)
    assert int(model.layers[0].calls.value) == 2 and np.isfinite(history.history["loss"][0])
    model(X)  # eagerly: the loss added inside the rematerialized function reaches `losses`
    (penalty,) = model.losses
    np.testing.assert_allclose(penalty, 0.01 * np.sum(model.layers[0].w.numpy() ** 2), rtol=1e-6)
    assert int(model.layers[0].calls.value) == 3

    stray = lm.Variable(jnp.zeros(()), trainable=False)
    with pytest.raises(ValueError, match="not among its variables"):
        lm.remat(lambda x: stray.assign(x.sum()), variables=[])(jnp.ones(3))
