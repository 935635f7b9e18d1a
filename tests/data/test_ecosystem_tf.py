"""fit / evaluate / predict on a tf.data.Dataset give the numbers of the same data as arrays."""

import numpy as np
import pytest

from tests.data.ecosystem_cases import BATCH, BATCH_SOURCE_CASES, X, Y, assert_same, make_model, run

tf = pytest.importorskip("tensorflow")


def _dataset(x, y, sw):
    parts = tuple(part for part in (x, y, sw) if part is not None)
    return tf.data.Dataset.from_tensor_slices(parts if len(parts) > 1 else parts[0]).batch(BATCH)


def tf_source(x, y, sw):
    return {"x": _dataset(x, y, sw)}


@pytest.mark.parametrize("case", BATCH_SOURCE_CASES)
def test_numbers_equal_arrays(case):
    assert_same(run(case, tf_source), case)


def test_cardinality_gives_the_steps_and_unknown_cardinality_none():
    from lamina.data import get_data_adapter

    assert get_data_adapter(_dataset(X, Y, None)).steps_per_epoch == 6
    unknown = _dataset(X, Y, None).filter(lambda x, y: True)
    assert get_data_adapter(unknown).steps_per_epoch is None
    assert get_data_adapter(unknown, steps_per_epoch=2).steps_per_epoch == 2


def test_x_as_a_one_tuple_and_a_repeating_dataset_with_steps():
    model = make_model(False)
    single = tf.data.Dataset.from_tensor_slices((X,)).batch(BATCH)
    want = model.predict(X, batch_size=BATCH, verbose=0)
    np.testing.assert_allclose(model.predict(single, verbose=0), want, rtol=1e-6)
    history = model.fit(_dataset(X, Y, None).repeat(), steps_per_epoch=3, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    with pytest.raises(ValueError, match=r"tf.data.Dataset passed as `x` is infinite.*steps_per_epoch"):
        model.fit(_dataset(X, Y, None).repeat(), verbose=0)


@pytest.mark.parametrize(
    "dataset, message",
    [
        (lambda: tf.data.Dataset.from_tensor_slices((X, Y[:, 0])), r"looks unbatched.*\.batch\(batch_size\)"),
        (lambda: tf.data.Dataset.from_tensor_slices((X, Y, Y, Y)).batch(4), r"a tf.data.Dataset\).*length 4"),
        (lambda: tf.data.Dataset.from_tensor_slices((X, np.array(["a"] * 22))).batch(4), r"a tf.data.Dataset\).*dtype object"),
        (lambda: tf.data.Dataset.from_tensor_slices(X).batch(4).filter(lambda x: False), r"no batch"),
    ],
)
def test_elements_that_do_not_fit_are_clear_errors(dataset, message):
    model = make_model(False)
    with pytest.raises(ValueError, match=message):
        model.fit(dataset(), verbose=0)


def test_y_beside_a_dataset_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"`y` must not be given when `x` is a tf.data.Dataset"):
        make_model(False).fit(_dataset(X, Y, None), Y, verbose=0)
