"""``lm.utils`` interactive-logging switch (progress bars, ``summary()``, dataset messages go to
the ``"lamina"`` logger when it is off) and ``standardize_dtype`` against Keras 3."""

import logging

import numpy as np
import pytest

import lamina as lm


@pytest.fixture
def logging_off():
    lm.utils.disable_interactive_logging()
    yield
    lm.utils.enable_interactive_logging()


def test_switch_round_trip(logging_off):
    assert lm.utils.is_interactive_logging_enabled() is False
    lm.utils.enable_interactive_logging()
    assert lm.utils.is_interactive_logging_enabled() is True


def test_progress_bar_and_summary_go_to_the_logger_when_off(logging_off, capsys, caplog):
    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2, name="head")])
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=1)
    with caplog.at_level(logging.INFO, logger="lamina"):
        model.fit(np.ones((4, 3)), np.zeros((4, 2)), batch_size=2, epochs=1, verbose=1)
        model.summary()
        bar = lm.utils.Progbar(target=2, verbose=1)
        bar.update(1, [("loss", 1.0)])
        bar.update(2, [("loss", 0.5)])
    assert capsys.readouterr().out == ""
    lines = [r.getMessage() for r in caplog.records if r.name == "lamina"]
    assert any(line.startswith("2/2") and "loss" in line for line in lines)  # one finished line each
    assert sum(line.startswith("2/2") for line in lines) == 2
    assert any("head" in line for line in lines) and any("Total params: 8" in line for line in lines)


def test_interactive_output_is_unchanged(capsys):
    bar = lm.utils.Progbar(target=1, verbose=2)
    bar.update(1, [("loss", 0.25)])
    assert "loss: 0.2500" in capsys.readouterr().out


def test_standardize_dtype_equals_keras():
    keras = pytest.importorskip("keras")
    import jax.numpy as jnp

    if keras.backend.backend() != "jax":
        pytest.skip("Keras's Python-int dtype depends on its backend; lamina follows the JAX one")
    for dtype in (None, "float32", np.float64, np.dtype("uint8"), jnp.bfloat16, jnp.int8, int, float, bool,
                  str, "int", complex, "float8_e4m3fn"):
        assert lm.utils.standardize_dtype(dtype) == keras.utils.standardize_dtype(dtype)
    for bad in ("f4", "foo", object):
        with pytest.raises(ValueError, match="Invalid dtype"):
            lm.utils.standardize_dtype(bad)
        with pytest.raises(ValueError, match="Invalid dtype"):
            keras.utils.standardize_dtype(bad)
