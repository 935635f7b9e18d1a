"""``lm.utils.timeseries_dataset_from_array`` against Keras 3 (tf.data) on the same arrays, and
the tf.data-style methods of the dataset it returns."""

import numpy as np
import pytest

import lamina as lm

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

DATA = np.arange(60, dtype="float32").reshape(30, 2) * 1.5
TARGETS = np.arange(30) * 10


def _keras_batches(*args, **kwargs):
    return [tuple(np.asarray(t) for t in b) if isinstance(b, tuple) else np.asarray(b)
            for b in keras.utils.timeseries_dataset_from_array(*args, **kwargs)]


@pytest.mark.parametrize("kwargs", [
    dict(sequence_length=5, batch_size=4),
    dict(sequence_length=4, sequence_stride=3, sampling_rate=2, batch_size=3),
    dict(sequence_length=3, start_index=4, end_index=25, batch_size=5, sequence_stride=2),
    dict(sequence_length=6, sampling_rate=3, batch_size=128),
])
@pytest.mark.parametrize("with_targets", [True, False])
def test_windows_and_targets_equal_keras_batch_by_batch(kwargs, with_targets):
    targets = TARGETS if with_targets else None
    ours = list(lm.utils.timeseries_dataset_from_array(DATA, targets, **kwargs))
    theirs = _keras_batches(DATA, targets, **kwargs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        if with_targets:
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
            assert a[0].dtype == b[0].dtype
        else:
            np.testing.assert_array_equal(a, b)


def test_unbatched_dataset_yields_single_windows():
    ours = lm.utils.timeseries_dataset_from_array(DATA, None, sequence_length=4, batch_size=None)
    theirs = _keras_batches(DATA, None, sequence_length=4, batch_size=None)
    assert len(ours) == len(theirs) == 27
    np.testing.assert_array_equal(np.stack(list(ours)), np.stack(theirs))


def test_shuffle_is_keras_permutation_same_windows_and_repeatable():
    kwargs = dict(sequence_length=3, batch_size=4, shuffle=True, seed=7)
    ds = lm.utils.timeseries_dataset_from_array(DATA, TARGETS, **kwargs)
    first = list(ds)
    # The first pass is Keras's seeded order of window starts.
    starts = np.arange(28)
    np.random.RandomState(7).shuffle(starts)
    np.testing.assert_array_equal(np.concatenate([y for _, y in first]), TARGETS[starts])
    # The same windows with the same targets as Keras (whose buffer shuffle reorders them).
    pairs = sorted((tuple(x.ravel()), int(y)) for b in first for x, y in zip(*b))
    keras_pairs = sorted((tuple(x.ravel()), int(y)) for b in _keras_batches(DATA, TARGETS, **kwargs)
                         for x, y in zip(*b))
    assert pairs == keras_pairs
    # Later passes reshuffle, identically for two datasets made with the same seed.
    second = np.concatenate([y for _, y in ds])
    again = lm.utils.timeseries_dataset_from_array(DATA, TARGETS, **kwargs)
    list(again)
    np.testing.assert_array_equal(np.concatenate([y for _, y in again]), second)
    assert not np.array_equal(second, TARGETS[starts])
    assert sorted(second.tolist()) == sorted(TARGETS[starts].tolist())


@pytest.mark.parametrize("kwargs, message", [
    (dict(start_index=-1), "`start_index` must be 0 or greater"),
    (dict(end_index=40), "`end_index` must be lower than the length of the data"),
    (dict(start_index=10, end_index=5), "`end_index` must be higher than `start_index`"),
    (dict(sampling_rate=0), "`sampling_rate` must be higher than 0"),
    (dict(sequence_stride=30), "`sequence_stride` must be lower than the length of the data"),
])
def test_bad_arguments_raise_keras_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lm.utils.timeseries_dataset_from_array(DATA, TARGETS, sequence_length=3, **kwargs)
    with pytest.raises(ValueError, match=message):
        keras.utils.timeseries_dataset_from_array(DATA, TARGETS, sequence_length=3, **kwargs)


def test_fit_and_predict_take_the_dataset():
    series = np.sin(np.arange(80, dtype="float32") / 5)
    ds = lm.utils.timeseries_dataset_from_array(series[:-4, None], series[4:], sequence_length=4,
                                                batch_size=16, shuffle=True, seed=0)
    model = lm.Sequential([lm.Input((4, 1)), lm.layers.Flatten(), lm.layers.Dense(1)])
    model.compile(optimizer=lm.optimizers.SGD(0.1), loss="mse", steps_per_execution=1)
    history = model.fit(ds, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3 and history.history["loss"][-1] < history.history["loss"][0]
    windows = lm.utils.timeseries_dataset_from_array(series[:-4, None], None, sequence_length=4, batch_size=16)
    assert model.predict(windows, verbose=0).shape == (73, 1)


def test_tf_data_style_methods():
    ds = lm.utils.timeseries_dataset_from_array(DATA, TARGETS, sequence_length=3, batch_size=8)
    assert len(ds) == 4
    [(x, y)] = list(ds.map(lambda x, y: (x * 0, y + 1)).take(1))
    assert not x.any() and y.tolist() == (TARGETS[:8] + 1).tolist()
    assert [y.tolist() for _, y in ds.skip(3)] == [TARGETS[24:28].tolist()]
    samples = ds.unbatch()
    assert len(samples) == 28 and samples[5][1] == TARGETS[5]
    rebatched = samples.skip(2).take(10).batch(4, drop_remainder=True)
    assert [y.tolist() for _, y in rebatched] == [TARGETS[2:6].tolist(), TARGETS[6:10].tolist()]
    mapped = samples.map(lambda x, y: (x.sum(), y)).batch(3)
    assert mapped[0][0].tolist() == [float(DATA[i:i + 3].sum()) for i in range(3)]
    assert ds.prefetch(2) is ds and ds.cache() is ds
    with pytest.raises(ValueError, match="already batched"):
        ds.batch(2)
    with pytest.raises(AttributeError, match="no tf.data method `shuffle`"):
        ds.shuffle(100)
    with pytest.raises(IndexError):
        ds[4]
