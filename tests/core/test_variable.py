"""lm.Variable: reads like an array everywhere, writes only through assign*, clear errors."""

import operator

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lamina as lm

# XLA flushes subnormal results to zero; keep magnitudes where NumPy and XLA agree exactly.
floats = hnp.arrays(
    np.float32, (3,), elements=st.floats(-10, 10, width=32).filter(lambda x: x == 0 or abs(x) > 1e-3)
)


@settings(max_examples=25, deadline=None)
@given(a=floats, b=floats)
def test_operators_match_numpy(a, b):
    v = lm.Variable(a)
    for op in (operator.add, operator.sub, operator.mul, operator.lt, operator.ge, operator.eq):
        np.testing.assert_allclose(np.asarray(op(v, b)), op(a, b), rtol=1e-6, atol=1e-30)
        np.testing.assert_allclose(np.asarray(op(b, v)), op(b, a), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(np.asarray(-v), -a)
    np.testing.assert_allclose(np.asarray(v ** 2), a ** 2, rtol=1e-6)


def test_matmul_indexing_and_numpy_protocol():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    v = lm.Variable(a)
    x = np.ones((4, 2), np.float32)
    np.testing.assert_allclose(np.asarray(x @ v), x @ a)
    np.testing.assert_allclose(np.asarray(v @ a.T), a @ a.T)
    np.testing.assert_allclose(np.asarray(v[1, 1:]), a[1, 1:])
    np.testing.assert_allclose(np.asarray(v), a)
    np.testing.assert_allclose(v.T, a.T)  # array attributes come from the value
    assert (v.shape, v.ndim, v.dtype, v.size) == ((2, 3), 2, np.dtype("float32"), 6)


def test_jnp_and_jax_nn_accept_variables_eagerly_and_under_jax_jit():
    v = lm.Variable(np.array([[-1.0, 2.0], [3.0, -4.0]], np.float32))
    x = jnp.ones((3, 2))

    def f(x):
        return jnp.matmul(x, v), jax.nn.relu(v), jnp.sum(v)

    for mm, relu, total in (f(x), jax.jit(f)(x)):
        np.testing.assert_allclose(mm, np.ones((3, 2)) @ np.asarray(v))
        np.testing.assert_allclose(relu, np.maximum(np.asarray(v), 0))
        assert float(total) == 0.0


def test_assign_family_and_numpy_copy():
    v = lm.Variable(np.zeros(2, np.float32), name="acc")
    v.assign([1.0, 2.0])
    v.assign_add(jnp.array([1.0, 1.0]))
    v.assign_sub(lm.Variable(np.array([0.5, 0.5], np.float32)))
    np.testing.assert_allclose(v.numpy(), [1.5, 2.5])
    snapshot = v.numpy()
    v.assign_add(np.ones(2))
    np.testing.assert_allclose(snapshot, [1.5, 2.5])  # numpy() is a copy


def test_assign_casts_to_the_variable_dtype():
    v = lm.Variable(np.zeros(2, np.float32))
    v.assign(np.array([1, 2], np.int32))
    assert v.dtype == jnp.float32 and v.value.dtype == jnp.float32


def test_assign_of_another_shape_names_variable_and_both_shapes():
    v = lm.Variable(np.zeros((2, 3), np.float32), name="kernel")
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*'kernel'.*\(2, 3\)"):
        v.assign(np.zeros((3, 2)))
    np.testing.assert_array_equal(v.numpy(), np.zeros((2, 3)))


def test_assign_of_a_string_or_a_complex_value_names_the_variable():
    v = lm.Variable(np.zeros(2, np.float32), name="bias")
    with pytest.raises(TypeError, match=r"Cannot assign str 'ab' to variable 'bias' \(float32\)"):
        v.assign("ab")
    with pytest.raises(ValueError, match=r"complex value \(dtype complex64\) to variable 'bias' of dtype float32"):
        v.assign(np.ones(2, np.complex64))  # a cast would keep only the real part
    np.testing.assert_array_equal(v.numpy(), np.zeros(2))


def test_initializer_string_with_shape():
    v = lm.Variable("ones", shape=(2, 2), dtype="float32")
    np.testing.assert_array_equal(v.numpy(), np.ones((2, 2)))
    with pytest.raises(ValueError, match="needs shape="):
        lm.Variable("zeros")


def test_trainable_flag_and_name():
    v = lm.Variable(np.zeros(()), trainable=False, name="count")
    assert (v.trainable, v.name, v.path) == (False, "count", "count")
    v.trainable = True
    assert v.trainable


def test_two_variables_never_share_a_buffer():
    a = lm.Variable(jnp.ones(3))
    b = lm.Variable(a.value)
    assert a.value is not b.value


def test_assigning_a_tracer_outside_a_scope_points_to_lm_jit():
    v = lm.Variable(np.zeros(()), name="leaky")

    @jax.jit
    def bad(x):
        v.assign(x)
        return x

    with pytest.raises(ValueError, match=r"(?s)'leaky'.*leaked tracer.*lm\.jit"):
        bad(1.0)
    assert float(v.value) == 0.0


def test_traced_initial_value_is_refused_with_advice():
    with pytest.raises(ValueError, match="traced initial value"):
        jax.jit(lambda x: lm.Variable(x).value)(jnp.ones(2))


def test_variable_is_hashable_by_identity():
    a, b = lm.Variable(np.zeros(2)), lm.Variable(np.zeros(2))
    assert len({a, b, a}) == 2
    assert [a, b] == [a, b]  # list equality uses identity first


def test_an_eager_training_step_compiles_nothing_the_second_time():
    """An updated weight stays uncommitted, as its initial value was: JAX caches eager
    operations by commitment, and the optimizer's copies (``fresh_copy``) committed them, so
    every eager op of a hand-written loop compiled again at the second step (38 programs for
    this MLP; found porting the "Introduction to Keras for researchers" guide)."""
    compiled = []

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(kwargs.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(8, activation="relu"), lm.layers.Dense(2)])
        optimizer = lm.optimizers.Adam(1e-2)
        x, y = np.ones((8, 4), "float32"), np.zeros((8, 2), "float32")
        per_step = []
        for _ in range(3):
            before = len(compiled)
            _, grads = lm.value_and_grad(lambda: jnp.mean((model(x) - y) ** 2), model.trainable_weights)()
            optimizer.apply(grads, model.trainable_weights)
            per_step.append(len(compiled) - before)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert per_step[1:] == [0, 0], per_step
    assert not any(v.value.committed for v in model.trainable_weights)
