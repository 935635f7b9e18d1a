"""What several optimizer test files (and benchmarks/custom_optimizers.py) share: the Keras
guide's custom optimizer, small weights with gradient steps, a small regression set, a
tolerance check, and a model written to and read back from lamina's and Keras's files."""

import warnings

import numpy as np

import lamina as lm

# The names of ``reload_three_ways``'s models, in its order.
READ_BACK = ["lamina file", "Keras's file", "Keras reading lamina's file"]


def momentum_sgd(base):
    """The Keras guide's custom optimizer, verbatim, over either library's base class."""

    class MomentumSGD(base):
        def __init__(self, learning_rate=0.01, momentum=0.9, name="momentum_sgd", **kwargs):
            super().__init__(learning_rate=learning_rate, name=name, **kwargs)
            self.momentum = momentum

        def build(self, var_list):
            if self.built:
                return
            super().build(var_list)
            self.momentums = self.add_optimizer_variables(var_list, "momentum")

        def update_step(self, gradient, variable, learning_rate):
            m = self.momentums[self._get_variable_index(variable)]
            self.assign(m, self.momentum * m - learning_rate * gradient)
            self.assign_add(variable, m)

        def get_config(self):
            return {**super().get_config(), "momentum": self.momentum}

    return MomentumSGD


def weights_and_steps():
    """A (3, 2) matrix and a (2,) vector, and four steps of gradients for them (the second
    three times larger, the third half as large)."""
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(2,)).astype("float32")]
    steps = [[rng.normal(size=w.shape).astype("float32") * s for w in weights] for s in (1.0, 3.0, 0.5, 1.0)]
    return weights, steps


def regression_xy():
    """16 samples of 4 features and a linear target with an offset."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1)) + 0.1).astype("float32")
    return x, y


def assert_close(ours, theirs, what, rtol=1e-5, atol=1e-6):
    """Two equally long lists of arrays agree entry by entry (the failing index in the message)."""
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol, err_msg=f"{what}: {i}")


def reload_three_ways(keras, ours, theirs, tmp_path):
    """Save lamina's model as ``.lamina`` and ``.keras`` and Keras's as ``.keras``, and read them
    back (see ``READ_BACK``): lamina's and Keras's files by lamina, lamina's ``.keras`` by Keras.
    A warning while lamina loads fails (no "optimizer state is not loaded")."""
    ours.save(tmp_path / "m.lamina")
    ours.save(tmp_path / "m.keras")
    theirs.save(tmp_path / "k.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reloaded = [lm.load_model(tmp_path / "m.lamina"), lm.load_model(tmp_path / "k.keras")]
    reloaded.append(keras.saving.load_model(tmp_path / "m.keras"))
    return reloaded
