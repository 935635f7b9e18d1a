"""The layers of the seed guide (Keras's "Making new layers and models via subclassing"),
translated to lamina and jax.numpy. Shared by the tests, the example and the benchmark."""

import jax
import jax.numpy as jnp

import lamina as lm


class LinearWithVariables(lm.Layer):
    """The guide's first Linear: variables created in __init__ from initializer objects."""

    def __init__(self, units=32, input_dim=32):
        super().__init__()
        w_init = lm.initializers.RandomNormal()
        self.w = lm.Variable(initial_value=w_init(shape=(input_dim, units), dtype="float32"), trainable=True)
        b_init = lm.initializers.Zeros()
        self.b = lm.Variable(initial_value=b_init(shape=(units,), dtype="float32"), trainable=True)

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b


class LinearAddWeight(lm.Layer):
    """The same layer written with the add_weight shortcut."""

    def __init__(self, units=32, input_dim=32):
        super().__init__()
        self.w = self.add_weight(shape=(input_dim, units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b


class ComputeSum(lm.Layer):
    """A layer with a non-trainable weight updated in call."""

    def __init__(self, input_dim):
        super().__init__()
        self.total = lm.Variable(initial_value=jnp.zeros((input_dim,)), trainable=False)

    def call(self, inputs):
        self.total.assign_add(jnp.sum(inputs, axis=0))
        return self.total


class Linear(lm.Layer):
    """The lazily built Linear: weights created in build() from the input shape."""

    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b


class MLPBlock(lm.Layer):
    """Layers nest: sublayers created in __init__, their weights at the first call."""

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


class ActivityRegularizationLayer(lm.Layer):
    """A layer that creates an activity regularization loss."""

    def __init__(self, rate=1e-2):
        super().__init__()
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * jnp.sum(inputs))
        return inputs


class OuterLayer(lm.Layer):
    """Losses of inner layers are collected by the outer one."""

    def __init__(self):
        super().__init__()
        self.activity_reg = ActivityRegularizationLayer(1e-2)

    def call(self, inputs):
        return self.activity_reg(inputs)
