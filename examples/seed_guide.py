"""The Keras subclassing guide ("Making new layers and models via subclassing"), in lamina.

Every example of the guide, in the guide's order, translated from TensorFlow to lamina and
``jax.numpy``: ``tf.matmul`` becomes ``jnp.matmul``, ``tf.Variable`` becomes ``lm.Variable``,
``tf.nn.relu`` becomes ``jax.nn.relu``. Each section prints what the guide prints.

Run it with ``python examples/seed_guide.py``.
"""

import jax
import jax.numpy as jnp

import lamina as lm

# -- The Layer class: the combination of state (weights) and some computation -------------
# A densely connected layer whose state is two variables, ``w`` and ``b``.


class LinearWithVariables(lm.Layer):
    """The guide's first ``Linear``: variables created in ``__init__`` from initializer objects."""

    def __init__(self, units=32, input_dim=32):
        super().__init__()
        w_init = lm.initializers.RandomNormal()
        self.w = lm.Variable(
            initial_value=w_init(shape=(input_dim, units), dtype="float32"),
            trainable=True,
        )
        b_init = lm.initializers.Zeros()
        self.b = lm.Variable(
            initial_value=b_init(shape=(units,), dtype="float32"),
            trainable=True,
        )

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b


# The shortcut: ``add_weight`` creates and tracks the variable in one step.


class LinearAddWeight(lm.Layer):
    """The same layer written with ``add_weight``."""

    def __init__(self, units=32, input_dim=32):
        super().__init__()
        self.w = self.add_weight(shape=(input_dim, units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b


def layer_class_section():
    """Call a layer like a function; the variables set as attributes are tracked."""
    x = jnp.ones((2, 2))
    linear_layer = LinearWithVariables(4, 2)
    y = linear_layer(x)
    print(y)
    print("shape:", y.shape, "dtype:", y.dtype)

    # Setting w and b as attributes made the layer track them, in assignment order.
    assert linear_layer.weights == [linear_layer.w, linear_layer.b]
    print("linear_layer.weights == [linear_layer.w, linear_layer.b]")

    x = jnp.ones((2, 2))
    linear_layer = LinearAddWeight(4, 2)
    y = linear_layer(x)
    print(y)
    print("shape:", y.shape, "dtype:", y.dtype)


# -- Layers can have non-trainable weights ------------------------------------------------
# Backpropagation does not update them; here ``call`` updates one itself.


class ComputeSum(lm.Layer):
    """Keeps a running sum of its inputs in a non-trainable variable."""

    def __init__(self, input_dim):
        super().__init__()
        self.total = lm.Variable(initial_value=jnp.zeros((input_dim,)), trainable=False)

    def call(self, inputs):
        self.total.assign_add(jnp.sum(inputs, axis=0))
        return self.total


def non_trainable_section():
    """``total`` grows at each call; it is a weight, but not a trainable one."""
    x = jnp.ones((2, 2))
    my_sum = ComputeSum(2)
    y = my_sum(x)
    print(y.numpy())
    y = my_sum(x)
    print(y.numpy())

    print("weights:", len(my_sum.weights))
    print("non-trainable weights:", len(my_sum.non_trainable_weights))
    print("trainable_weights:", my_sum.trainable_weights)


# -- Deferring weight creation until the shape of the inputs is known ---------------------
# ``build(input_shape)`` runs once, at the first call, with the shape of the first input.


class Linear(lm.Layer):
    """``Linear`` built lazily: the input dimension comes from the first input."""

    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer="random_normal",
            trainable=True,
        )
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b


def lazy_build_section():
    """At instantiation the input shape is unknown; the first call creates the weights."""
    x = jnp.ones((2, 2))
    linear_layer = Linear(32)
    print("built before the first call:", linear_layer.built)
    y = linear_layer(x)
    print("built after the first call:", linear_layer.built)
    print("w shape:", linear_layer.w.shape, "b shape:", linear_layer.b.shape, "y shape:", y.shape)


# -- Layers are recursively composable -----------------------------------------------------
# A layer stored as an attribute of another layer has its weights tracked by the outer one.


class MLPBlock(lm.Layer):
    """Three ``Linear`` sublayers made in ``__init__``; their weights appear at the first call."""

    def __init__(self):
        super().__init__()
        self.linear_1 = Linear(32)
        self.linear_2 = Linear(32)
        self.linear_3 = Linear(1)

    def call(self, inputs):
        x = self.linear_1(inputs)
        x = jax.nn.relu(x)
        x = self.linear_2(x)
        x = jax.nn.relu(x)
        return self.linear_3(x)


def composition_section():
    """The first call of ``mlp`` builds all three sublayers."""
    mlp = MLPBlock()
    y = mlp(jnp.ones(shape=(3, 64)))  # The first call to `mlp` creates the weights
    print("weights:", len(mlp.weights))
    print("trainable weights:", len(mlp.trainable_weights))
    print("y shape:", y.shape)


# -- The add_loss() method -----------------------------------------------------------------
# ``call`` can create loss values to use in the training loop with ``self.add_loss(value)``.


class ActivityRegularizationLayer(lm.Layer):
    """A layer that creates an activity regularization loss."""

    def __init__(self, rate=1e-2):
        super().__init__()
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * jnp.sum(inputs))
        return inputs


class OuterLayer(lm.Layer):
    """Losses added by inner layers show up in the outer layer's ``losses`` too."""

    def __init__(self):
        super().__init__()
        self.activity_reg = ActivityRegularizationLayer(1e-2)

    def call(self, inputs):
        return self.activity_reg(inputs)


def _show(losses):
    """Loss values as short floats (they are scalar arrays)."""
    return [round(float(loss), 6) for loss in losses]


def add_loss_section():
    """``layer.losses`` holds the losses of the last call, including the inner layers'."""
    layer = ActivityRegularizationLayer(1e-2)
    layer(jnp.ones((2, 2)))
    print("layer.losses:", _show(layer.losses))

    outer = OuterLayer()
    print("outer.losses before any call:", outer.losses)
    outer(jnp.ones((1, 1)))
    print("outer.losses after one call:", _show(outer.losses))
    # `losses` is reset at the start of each outermost __call__: only the last call's remain.
    outer(jnp.full((1, 1), 2.0))
    print("outer.losses after a second call:", _show(outer.losses))


def main():
    """Run every section of the guide in order."""
    layer_class_section()
    non_trainable_section()
    lazy_build_section()
    composition_section()
    add_loss_section()


if __name__ == "__main__":
    main()
