"""The guide's cross-framework components ("Writing cross-framework custom components"), as
both "Getting started with Keras 3" and "Introduction to Keras for engineers" show them,
written with ``jax.numpy`` and ``lm.random``: one copy for both guide ports."""

import jax.numpy as jnp

import lamina as lm

WIDTHS = (4, 4, 8, 8)  # the guide's 64, 64, 128, 128, narrowed for speed


class MyDense(lm.layers.Layer):
    def __init__(self, units, activation=None, name=None):
        super().__init__(name=name)
        self.units = units
        self.activation = lm.activations.get(activation)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.w = self.add_weight(
            shape=(input_dim, self.units),
            initializer=lm.initializers.GlorotNormal(),
            name="kernel",
            trainable=True,
        )

        self.b = self.add_weight(
            shape=(self.units,),
            initializer=lm.initializers.Zeros(),
            name="bias",
            trainable=True,
        )

    def call(self, inputs):
        # jax.numpy inside call (the guide's keras.ops); lamina threads the state.
        x = jnp.matmul(inputs, self.w) + self.b
        return self.activation(x)


class MyDropout(lm.layers.Layer):
    def __init__(self, rate, name=None):
        super().__init__(name=name)
        self.rate = rate
        # Use seed_generator for managing RNG state.
        # It is a state element and its seed variable is
        # tracked as part of `layer.variables`.
        self.seed_generator = lm.random.SeedGenerator(1337)

    def call(self, inputs):
        # Use `lm.random` for random ops.
        return lm.random.dropout(inputs, self.rate, seed=self.seed_generator)


class MyModel(lm.Model):
    def __init__(self, num_classes, widths=WIDTHS):
        super().__init__()
        self.conv_base = lm.Sequential(
            [
                lm.layers.Conv2D(widths[0], kernel_size=(3, 3), activation="relu"),
                lm.layers.Conv2D(widths[1], kernel_size=(3, 3), activation="relu"),
                lm.layers.MaxPooling2D(pool_size=(2, 2)),
                lm.layers.Conv2D(widths[2], kernel_size=(3, 3), activation="relu"),
                lm.layers.Conv2D(widths[3], kernel_size=(3, 3), activation="relu"),
                lm.layers.GlobalAveragePooling2D(),
            ]
        )
        self.dp = MyDropout(0.5)
        self.dense = MyDense(num_classes, activation="softmax")

    def call(self, x):
        x = self.conv_base(x)
        x = self.dp(x)
        return self.dense(x)
