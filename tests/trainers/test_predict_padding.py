"""``predict`` pads the last, partial batch to the batch size (issue 10, item 4).

Before, every distinct last-batch size compiled the predict step again (and "auto" blocks
depended on the number of samples): 28 programs for 10 input sizes. Now one step program
serves every size; the padded rows are dropped before the result is returned.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm
from lamina.data import staging

_SIZES = (1, 5, 16, 17, 23, 40, 61, 77, 90, 131)  # below, at and above the batch size


def _mlp(seed=0):
    lm.random.set_seed(seed)
    return lm.Sequential([lm.Input((6,)), lm.layers.Dense(8, activation="relu"), lm.layers.Dense(3)])


def test_predict_compiles_its_step_once_for_ten_input_sizes(compiles):
    model = _mlp()
    x = np.random.default_rng(0).normal(size=(200, 6)).astype("float32")
    model(x[:2])  # builds the weights (their initializers compile eagerly)
    start = len(compiles.names)
    for n in _SIZES:
        model.predict(x[:n], batch_size=16, verbose=0)
    # NumPy data goes to the device batch by batch: the predict step is the only program,
    # whatever the size. (Before: 28 programs, a step for each last-batch size and for each
    # "auto" block size, and the data's gathers.)
    names = [name for name in compiles.names[start:] if name != "jit(<lambda>)"]  # lm.jit's
    assert names.count("jit(step)") <= 2 and set(names) <= {"jit(step)"}, names  # option probe

    # Data already on the device is gathered there; the gather program is shaped by the
    # number of samples, so it compiles once per input size and batch shape (whole or the
    # tail), the step programs are the two above.
    on_device = [jnp.asarray(x[: n + 1]) for n in _SIZES]
    start = len(compiles.names)
    for data in on_device:
        model.predict(data, batch_size=16, verbose=0)
    names = compiles.names[start:]
    assert names.count("jit(step)") == 0, names
    assert names.count("jit(_gather)") <= 2 * len(_SIZES) and set(names) <= {"jit(_gather)"}, names


def test_padded_predict_equals_keras_and_drops_the_padding(keras):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(77, 6)).astype("float32")
    model = _mlp()
    reference = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(3)])
    reference.set_weights(model.get_weights())
    for n in (1, 5, 16, 17, 77):
        got = model.predict(x[:n], batch_size=16, verbose=0)
        want = reference.predict(x[:n], batch_size=16, verbose=0)
        assert got.shape == (n, 3)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_first_last_batch_size_gets_its_own_program_and_no_third(compiles):
    """The second program a batch size may have goes to the first partial batch predict
    meets: data of that size (repeated calls, a validation set) then cost the rows they have,
    not a whole padded batch. Later sizes reuse the two programs, and one input size always
    runs the same programs: repeated calls are bit-equal."""
    model = _mlp()
    x = np.random.default_rng(5).normal(size=(120, 6)).astype("float32")
    expected = np.asarray(model(x))
    model(x[:2])
    steps = lambda: [n for n in compiles.names if n == "jit(step)"]  # noqa: E731

    def predict(n):
        before = len(steps())
        got = model.predict(x[:n], batch_size=16, verbose=0)
        np.testing.assert_allclose(got, expected[:n], rtol=1e-5, atol=1e-6)
        return len(steps()) - before, got

    compiled, first = predict(53)
    assert compiled == 2  # 3 whole batches and one of 5 rows
    assert model._lm_predict_tails == {16: 5}
    compiled, again = predict(53)
    assert compiled == 0
    np.testing.assert_array_equal(again, first)
    assert [predict(n)[0] for n in (35, 34, 40, 47, 112, 120, 7, 3)] == [0] * 8  # padded to 5 or 16
    np.testing.assert_array_equal(predict(53)[1], first)

    other = _mlp()  # `steps` that stop before the partial batch reserve no tail
    other.predict(x[:53], batch_size=16, steps=2, verbose=0)
    assert getattr(other, "_lm_predict_tails", {}) == {}


def test_padded_predict_with_structured_outputs_steps_and_blocks():
    rng = np.random.default_rng(2)
    x = {"a": rng.normal(size=(45, 4)).astype("float32"), "b": rng.normal(size=(45, 2)).astype("float32")}
    a, b = lm.Input((4,), name="a"), lm.Input((2,), name="b")
    joined = lm.layers.Concatenate()([a, b])
    model = lm.Model({"a": a, "b": b}, {"sum": lm.layers.Dense(1)(joined), "proj": lm.layers.Dense(5)(joined)})
    expected = {k: np.asarray(v) for k, v in model(x).items()}

    got = model.predict(x, batch_size=8, verbose=0)  # 5 full batches and a padded one
    for key in expected:
        assert got[key].shape == expected[key].shape
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6)

    first = model.predict(x, batch_size=8, steps=2, verbose=0)  # no padding reached
    np.testing.assert_allclose(first["proj"], expected["proj"][:16], rtol=1e-5, atol=1e-6)

    model.compile(steps_per_execution=2)  # blocks of two batches, then the padded batch
    blocked = model.predict(x, batch_size=8, verbose=0)
    np.testing.assert_allclose(blocked["sum"], expected["sum"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("staged", [False, True], ids=["streamed", "staged"])
def test_a_batch_callback_sees_each_batch_without_the_padding(staged, monkeypatch):
    if staged:  # tiny batches staged like large ones (lamina/data/staging.py)
        monkeypatch.setattr(staging, "MIN_BATCH_BYTES", 0)
    model = _mlp()
    x = np.random.default_rng(3).normal(size=(21, 6)).astype("float32")
    seen = []

    class Record(lm.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            seen.append(np.asarray(logs["outputs"]))

    out = model.predict(x, batch_size=8, verbose=0, callbacks=[Record()])
    assert [s.shape[0] for s in seen] == [8, 8, 5]
    np.testing.assert_allclose(np.concatenate(seen), out)
    np.testing.assert_allclose(out, np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    # Data on the device is padded by the device gather instead of on the host.
    on_device = model.predict(jnp.asarray(x), batch_size=8, verbose=0)
    np.testing.assert_allclose(on_device, out, rtol=1e-6, atol=1e-6)


def test_evaluate_compiles_one_step_for_every_last_batch_size_and_equals_keras(compiles, keras):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 6)).astype("float32")
    y = rng.normal(size=(300, 3)).astype("float32")
    model = _mlp()
    model.compile("sgd", "mse", metrics=["mae"])
    reference = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(3)])
    reference.compile("sgd", "mse", metrics=["mae"])
    reference.set_weights(model.get_weights())
    sizes = (70, 93, 130, 151, 170, 199, 222, 250, 271, 299)  # 17 to 74 batches of 4
    model.evaluate(x[:8], y[:8], batch_size=4, verbose=0)  # the full-batch step
    start = len(compiles.names)
    for n in sizes:
        got = model.evaluate(x[:n], y[:n], batch_size=4, verbose=0)
        want = reference.evaluate(x[:n], y[:n], batch_size=4, verbose=0)
        np.testing.assert_allclose(got, want, rtol=1e-5)
    # Keras compiles too; count lamina's test step only: the padded program that serves every
    # last-batch size (see test_evaluate_padding.py), none for the full batches and no block
    # sized by the number of samples (before: a step per last-batch size and per "auto" block
    # size).
    names = [name for name in compiles.names[start:] if name == "jit(step)"]
    assert len(names) == 1, compiles.names[start:]


def test_staged_batches_also_compile_two_programs_per_batch_size(compiles, monkeypatch):
    """Batches staged on the CPU backend (lamina/data/staging.py, here for tiny batches) run a
    step that slices its batch out of a slot shaped by the batch size alone: ten input sizes
    still compile the whole batch's program and the tail's, and give the model's outputs."""
    monkeypatch.setattr(staging, "MIN_BATCH_BYTES", 0)
    model = _mlp()
    x = np.random.default_rng(6).normal(size=(200, 6)).astype("float32")
    expected = np.asarray(model(x))
    start = len(compiles.names)
    for n in _SIZES:
        np.testing.assert_allclose(model.predict(x[:n], batch_size=16, verbose=0), expected[:n], rtol=1e-5, atol=1e-6)
    names = [name for name in compiles.names[start:] if name != "jit(<lambda>)"]
    assert names.count("jit(step)") <= 2 and set(names) <= {"jit(step)"}, names
