"""compile(auto_scale_loss=...) as in Keras 3: under mixed_float16 the optimizer is wrapped in a
LossScaleOptimizer only when it is True (the default); the choice is saved in the compile
config and replayed when a model file is loaded."""

import numpy as np
import pytest

import lamina as lm


@pytest.fixture(autouse=True)
def float16_policy():
    lm.mixed_precision.set_dtype_policy("mixed_float16")
    yield
    lm.mixed_precision.set_dtype_policy("float32")


def _model():
    lm.utils.set_random_seed(0)
    return lm.Sequential([lm.Input((4,)), lm.layers.Dense(8, activation="relu"), lm.layers.Dense(1)])


def test_default_wraps_and_false_leaves_the_optimizer_as_given():
    wrapped = _model()
    wrapped.compile(lm.optimizers.Adam(0.01), "mse")
    assert isinstance(wrapped.optimizer, lm.optimizers.LossScaleOptimizer)
    assert wrapped.get_compile_config()["auto_scale_loss"] is True
    plain = _model()
    adam = lm.optimizers.Adam(0.01)
    plain.compile(adam, "mse", auto_scale_loss=False)
    assert plain.optimizer is adam
    assert plain.get_compile_config()["auto_scale_loss"] is False
    # Without loss scaling the step is an ordinary float32-state Adam step.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    before = [np.array(w.numpy()) for w in plain.trainable_weights]
    plain.fit(x, y, batch_size=8, epochs=1, verbose=0)
    slots = [v for v in adam.variables if "/mu/" in v.path or "/nu/" in v.path]
    assert len(slots) == 8 and all(v.dtype == "float32" for v in plain.trainable_weights + slots)
    assert not any(np.array_equal(a, w.numpy()) for a, w in zip(before, plain.trainable_weights))


@pytest.mark.parametrize("auto_scale_loss", [True, False])
def test_the_choice_is_saved_and_replayed_by_load_model(tmp_path, auto_scale_loss):
    model = _model()
    model.compile(lm.optimizers.SGD(0.1), "mse", auto_scale_loss=auto_scale_loss)
    model.save(tmp_path / "m.lamina")
    loaded = lm.load_model(tmp_path / "m.lamina")
    assert loaded.get_compile_config()["auto_scale_loss"] is auto_scale_loss
    expected = lm.optimizers.LossScaleOptimizer if auto_scale_loss else lm.optimizers.SGD
    assert type(loaded.optimizer) is expected


def test_a_config_without_the_key_wraps_as_before():
    model = _model()
    model.compile_from_config({"optimizer": "adam", "loss": "mse"})  # a file saved before the argument
    assert isinstance(model.optimizer, lm.optimizers.LossScaleOptimizer)
