"""The state scope and functionalize: stateful code made pure, nothing leaking out."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from seed_layers import ComputeSum, OuterLayer

import lamina as lm
from lamina.core.state import UndeclaredVariableError


def test_scope_redirects_reads_and_writes():
    v = lm.Variable(np.zeros(2, np.float32))
    with lm.StateScope({v: jnp.ones(2)}) as scope:
        np.testing.assert_array_equal(v.value, np.ones(2))
        v.assign_add(jnp.ones(2))
    np.testing.assert_array_equal(scope.values[id(v)], 2 * np.ones(2))
    np.testing.assert_array_equal(v.numpy(), np.zeros(2))  # the variable itself is untouched


def test_nested_scopes_read_through_and_write_innermost():
    a, b = lm.Variable(np.zeros(()), name="a"), lm.Variable(np.zeros(()), name="b")
    with lm.StateScope({a: jnp.array(1.0)}):
        with lm.StateScope({b: jnp.array(2.0)}) as inner:
            assert float(a.value + b.value) == 3.0
            a.assign(5.0)
        assert float(a.value) == 1.0  # the write stayed in the inner scope
    assert float(inner.values[id(a)]) == 5.0


def test_functionalize_is_pure_and_jittable():
    layer = ComputeSum(2)
    layer(jnp.zeros((1, 2)))  # build
    pure = lm.functionalize(layer, [layer.total])
    out, (total,), losses = jax.jit(pure)([jnp.array([1.0, 1.0])], jnp.ones((3, 2)))
    np.testing.assert_array_equal(out, [4.0, 4.0])  # the returned Variable became its value
    np.testing.assert_array_equal(total, [4.0, 4.0])
    np.testing.assert_array_equal(layer.total.numpy(), [0.0, 0.0])
    assert losses == []


def test_functionalize_returns_add_loss_values():
    outer = OuterLayer()
    pure = lm.functionalize(outer, [])
    _, _, losses = jax.jit(pure)([], jnp.ones((2, 2)))
    np.testing.assert_allclose(losses, [0.04])


def test_functionalize_refuses_writes_that_would_be_lost():
    given, other = lm.Variable(np.zeros(())), lm.Variable(np.zeros(()), name="other")

    def fn():
        other.assign_add(1.0)
        return given.value

    with pytest.raises(ValueError, match="'other'"):
        lm.functionalize(fn, [given])([jnp.zeros(())])


def test_strict_functionalize_refuses_undeclared_reads():
    given, other = lm.Variable(np.zeros(())), lm.Variable(np.zeros(()), name="hidden")
    pure = lm.functionalize(lambda: given.value + other.value, [given], strict=True)
    with pytest.raises(UndeclaredVariableError, match="'hidden'"):
        pure([jnp.zeros(())])


def test_wrong_number_of_values_is_reported():
    v = lm.Variable(np.zeros(()))
    with pytest.raises(ValueError, match="expected 1 values, got 2"):
        lm.functionalize(lambda: v.value, [v])([1.0, 2.0])
