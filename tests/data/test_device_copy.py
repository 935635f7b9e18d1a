"""In-memory data on the device: the copy reused across calls, never stale, never keeping user
data alive; the device budget, above which batches are streamed from the host with the same
batches, order and results as the on-device path (lamina/data/device_copy.py)."""

import gc
import weakref

import jax
import numpy as np
import pytest

import lamina as lm
from lamina.data import device_copy, get_data_adapter
from lamina.distribution import data as distribution_data

N, FEATURES = 40, 5


@pytest.fixture(autouse=True)
def _fresh_cache():
    lm.data.clear_device_cache()
    lm.data.set_device_budget(None)
    yield
    lm.data.clear_device_cache()
    lm.data.set_device_budget(None)


@pytest.fixture
def puts(monkeypatch):
    """Every array handed to jax.device_put, as (shape, dtype) pairs."""
    seen = []
    real = jax.device_put

    def counting(x, *args, **kwargs):
        for leaf in jax.tree_util.tree_leaves(x):
            if isinstance(leaf, np.ndarray):
                seen.append((leaf.shape, leaf.dtype))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(jax, "device_put", counting)
    return seen


def placed_at(a, offset_bytes):
    """A copy of ``a`` at ``offset_bytes`` past a 64-byte boundary: the CPU backend's
    device_put copies unaligned arrays and uses aligned ones in place (never cached)."""
    buf = np.empty(a.nbytes + 128, np.uint8)
    start = -buf.ctypes.data % 64 + offset_bytes
    out = buf[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, FEATURES)).astype(np.float32)
    y = rng.standard_normal((n, 1)).astype(np.float32)
    return placed_at(x, 4), placed_at(y, 4)


def model(steps_per_execution=1, seed=0):
    lm.random.set_seed(seed)  # the same initial weights and shuffling order for every model
    net = lm.Sequential([lm.layers.Dense(4, activation="relu", input_shape=(FEATURES,)), lm.layers.Dense(1)])
    net.compile(optimizer=lm.optimizers.SGD(0.05), loss="mse", steps_per_execution=steps_per_execution)
    return net


def weights(net):
    return [np.asarray(w) for w in net.get_weights()]


def full_copies(seen, array):
    return sum(1 for shape, dtype in seen if shape == array.shape and dtype == array.dtype)


# -- the device copy is reused, and never stale ----------------------------------------------


def test_repeated_fit_and_evaluate_copy_the_data_once(puts):
    x, y = data()
    net = model()
    for _ in range(3):
        net.fit(x, y, batch_size=8, epochs=1, verbose=0)
    net.evaluate(x, y, batch_size=8, verbose=0)
    assert full_copies(puts, x) == 1
    assert full_copies(puts, y) == 1


def test_validation_data_that_are_the_training_arrays_share_their_copy(puts):
    x, y = data()
    model().fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0)
    assert full_copies(puts, x) == 1


def test_validation_split_slices_find_their_copy_again(puts):
    x, y = data()
    net = model()
    for _ in range(2):
        net.fit(x, y, batch_size=8, epochs=1, validation_split=0.25, verbose=0)
    train_rows = (30, FEATURES)
    assert sum(1 for shape, _ in puts if shape == train_rows) == 1


def test_an_array_changed_in_place_between_fits_is_trained_on_with_its_new_values(puts):
    x, y = data()
    new_x, _ = data(seed=1)
    net = model()
    net.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    x_before = x.copy()
    x[:] = new_x  # in place: the same object, new content
    net.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    reference = model()
    reference.fit(x_before, y.copy(), batch_size=8, epochs=1, shuffle=False, verbose=0)
    reference.fit(new_x.copy(), y.copy(), batch_size=8, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(weights(net), weights(reference)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # The changed array is copied again; the unchanged targets are not.
    assert full_copies(puts, x) == 4  # two here, two for the reference's fresh copies
    assert full_copies(puts, y) == 3  # one here, two for the reference


def test_a_float64_array_changed_in_place_is_seen_through_its_converted_copy():
    x, y = data()
    x64 = x.astype(np.float64)
    net = model()
    net.fit(x64, y, batch_size=8, epochs=1, shuffle=False, verbose=0)  # caches its float32 copy
    x64 *= 3.0
    after = net.evaluate(x64, y, batch_size=8, verbose=0)
    assert after == net.evaluate(x64.astype(np.float32), y.copy(), batch_size=8, verbose=0)
    assert after != net.evaluate(x, y.copy(), batch_size=8, verbose=0)


@pytest.mark.parametrize("offset", [4, 0], ids=["copied", "used in place"])
def test_the_cache_does_not_keep_user_arrays_or_their_copies_alive(offset):
    x, y = data()
    x, y = placed_at(x, offset), placed_at(y, offset)
    net = model()
    net.fit(x, y, batch_size=8, epochs=1, verbose=0)
    in_place = jax.default_backend() == "cpu" and offset == 0
    assert len(device_copy._CACHE) == (0 if in_place else 2)
    refs = [weakref.ref(x.base), weakref.ref(y.base)]
    del x, y
    gc.collect()
    assert [ref() for ref in refs] == [None, None]
    assert len(device_copy._CACHE) == 0


def test_the_cache_is_bounded_least_recently_used_first_out():
    cache = device_copy.DeviceCopyCache(max_entries=2)
    arrays = [np.full((3,), i, np.float32) for i in range(3)]
    for a in arrays[:2]:
        cache.store(a, a, device_copy.put([a])[0])
    assert cache.lookup(arrays[0], arrays[0]) is not None  # now the most recently used
    cache.store(arrays[2], arrays[2], device_copy.put([arrays[2]])[0])
    assert len(cache) == 2
    assert cache.lookup(arrays[1], arrays[1]) is None
    assert cache.lookup(arrays[0], arrays[0]) is not None


def test_jax_arrays_are_used_as_they_are():
    x, y = data()
    xj, yj = jax.numpy.asarray(x), jax.numpy.asarray(y)
    adapter = get_data_adapter(xj, yj, batch_size=8)
    assert adapter._leaves[0] is xj and adapter._leaves[1] is yj
    lm.data.set_device_budget(0.0)  # already on the device: not streamed either
    adapter = get_data_adapter(xj, yj, batch_size=8)
    assert not adapter.streaming


# -- the budget --------------------------------------------------------------------------------


def test_the_budget_setting_and_its_environment_variable(monkeypatch):
    monkeypatch.setenv(device_copy.BUDGET_ENV, "0.125")
    assert lm.data.device_budget() == 0.125
    lm.data.set_device_budget(0.75)
    assert lm.data.device_budget() == 0.75
    lm.data.set_device_budget(None)
    assert lm.data.device_budget() == 0.125
    monkeypatch.setenv(device_copy.BUDGET_ENV, "lots")
    with pytest.raises(ValueError, match="LAMINA_DATA_DEVICE_BUDGET must be a fraction .* got 'lots'"):
        lm.data.device_budget()
    with pytest.raises(ValueError, match=r"set_device_budget\(fraction\) must be a fraction .* got 2"):
        lm.data.set_device_budget(2)
    monkeypatch.delenv(device_copy.BUDGET_ENV)
    assert lm.data.device_budget() == device_copy.DEFAULT_BUDGET
    assert device_copy.free_device_bytes() > 0


def test_data_above_the_budget_are_streamed_and_never_copied_whole(puts):
    x, y = data()
    lm.data.set_device_budget(1e-12)
    adapter = get_data_adapter(x, y, batch_size=8)
    assert adapter.streaming
    model().fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y))
    assert not any(shape[:1] == (N,) for shape, dtype in puts if dtype == np.float32)
    assert len(device_copy._CACHE) == 0


def test_within_the_budget_the_data_go_to_the_device():
    x, y = data()
    assert not get_data_adapter(x, y, batch_size=8).streaming


def test_new_data_over_the_budget_first_drop_the_copies_of_other_data(monkeypatch):
    x, y = data()
    get_data_adapter(x, y, batch_size=8)._leaves  # noqa: B018 - cached
    assert len(device_copy._CACHE) == 2
    other_x, other_y = data(seed=3)
    calls = []

    def fits(nbytes):
        calls.append(len(device_copy._CACHE))
        return len(device_copy._CACHE) == 0  # room only once the other copies are gone

    monkeypatch.setattr(device_copy, "_fits", fits)
    assert not get_data_adapter(other_x, other_y, batch_size=8).streaming
    assert calls == [2, 0]
    assert len(device_copy._CACHE) == 2  # the new data's copies


def test_streaming_sends_the_next_item_before_the_current_one_is_used(puts, monkeypatch):
    # On an accelerator each streamed batch is sent ahead of its step (the transfer overlaps
    # the step before it); the CPU backend is told to behave as one.
    monkeypatch.setattr(distribution_data, "_device_is_host", lambda: False)
    x, y = data()
    lm.data.set_device_budget(0.0)
    items = get_data_adapter(x, y, batch_size=8, shuffle=True).epoch(0, block=1)
    next(items)
    assert sum(1 for shape, _ in puts if shape == (8, FEATURES)) == 2  # this item and the next


def test_on_the_cpu_backend_streamed_batches_go_to_the_step_as_numpy(puts):
    # A transfer to the CPU backend is a host copy either way: the compiled step's own
    # transfer takes the NumPy batch, and no separate device_put runs per batch.
    x, y = data()
    lm.data.set_device_budget(0.0)
    _, (xb, yb, _) = next(get_data_adapter(x, y, batch_size=8, shuffle=True).epoch(0, block=1))
    assert isinstance(xb, np.ndarray) and xb.shape == (8, FEATURES) and xb.dtype == np.float32
    assert not [shape for shape, _ in puts if shape == (8, FEATURES)]


# -- streaming gives exactly what the device gives ----------------------------------------------


def batches(adapter, epochs=2, block=3):
    out = []
    for epoch in range(epochs):
        for steps, item in adapter.epoch(epoch, block=block):
            out.append((steps, jax.tree_util.tree_map(np.asarray, item)))
    return out


@pytest.mark.parametrize("shuffle", [True, "batch", False])
@pytest.mark.parametrize("steps_per_epoch", [None, 2])
def test_streamed_batches_are_the_device_batches(shuffle, steps_per_epoch):
    x, y = data(n=37)
    sw = np.linspace(0.5, 1.5, 37).astype(np.float32)
    got = {}
    for budget in (None, 0.0):
        lm.data.set_device_budget(budget)
        lm.data.clear_device_cache()
        np.random.seed(7)
        adapter = get_data_adapter({"a": x, "b": x[:, :2]}, y, sw, batch_size=5, shuffle=shuffle,
                                   steps_per_epoch=steps_per_epoch)
        assert adapter.streaming == (budget == 0.0)
        got[budget] = batches(adapter, epochs=3)
    assert [s for s, _ in got[None]] == [s for s, _ in got[0.0]]
    for (_, a), (_, b) in zip(got[None], got[0.0]):
        jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_streamed_padded_prediction_batches_match():
    x, _ = data(n=13)
    got = {}
    for budget in (None, 0.0):
        lm.data.set_device_budget(budget)
        lm.data.clear_device_cache()
        adapter = get_data_adapter(x, batch_size=5, shuffle=False, for_training=False)
        adapter.pad_partial_batch = True
        got[budget] = batches(adapter, epochs=1, block=2)
    assert [s for s, _ in got[0.0]] == [2, 1]
    for (_, a), (_, b) in zip(got[None], got[0.0]):
        jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
    np.testing.assert_array_equal(got[0.0][1][1][0][-2:], np.stack([x[-1], x[-1]]))


def test_a_streamed_position_saved_and_restored_resumes_with_the_same_batches():
    x, y = data(n=30)
    lm.data.set_device_budget(0.0)
    np.random.seed(3)
    adapter = get_data_adapter(x, y, batch_size=4, shuffle=True)
    items = adapter.epoch(0, block=1)
    for _ in range(3):
        next(items)
    state = adapter.get_state()
    rest = [np.asarray(item[0]) for _, item in items]
    resumed = get_data_adapter(x, y, batch_size=4, shuffle=True)
    resumed.set_state(state)
    again = [np.asarray(item[0]) for _, item in resumed.epoch(0, block=1, start_step=3)]
    assert len(rest) == len(again) == 5
    for a, b in zip(rest, again):
        np.testing.assert_array_equal(a, b)


def _train(budget, steps_per_execution, **fit_kwargs):
    lm.data.set_device_budget(budget)
    lm.data.clear_device_cache()
    x, y = data(n=44)
    net = model(steps_per_execution)
    history = net.fit(x, y, batch_size=8, epochs=2, shuffle=True, verbose=0, validation_data=(x[:12], y[:12]),
                      **fit_kwargs)
    results = (net.evaluate(x, y, batch_size=8, verbose=0), net.predict(x, batch_size=8, verbose=0))
    return weights(net), history.history, results


@pytest.mark.parametrize("weighting, steps_per_execution", [
    ("none", 1), ("none", 4), ("sample_weight", 4), ("class_weight", 1),
])
def test_fit_evaluate_predict_streamed_match_the_device_path(weighting, steps_per_execution):
    kwargs = {}
    if weighting == "sample_weight":
        kwargs["sample_weight"] = np.linspace(0.2, 2.0, 44).astype(np.float32)
    if weighting == "class_weight":
        # y is continuous: the class of a sample is round(y), as Keras reads it
        kwargs["class_weight"] = {0: 2.0, 1: 0.5, -1: 1.5}
    on_device = _train(None, steps_per_execution, **kwargs)
    streamed = _train(1e-12, steps_per_execution, **kwargs)
    for a, b in zip(on_device[0], streamed[0]):
        np.testing.assert_array_equal(a, b)
    assert on_device[1] == streamed[1]
    assert on_device[2][0] == streamed[2][0]
    np.testing.assert_array_equal(on_device[2][1], streamed[2][1])


def test_a_block_size_changed_mid_epoch_streams_the_device_batches():
    """fit's "auto" block size may change between items: the item sent ahead for the old size
    is dropped and the batches stay those of the device path."""
    x, y = data(n=100)
    got = {}
    for budget in (None, 0.0):
        lm.data.set_device_budget(budget)
        lm.data.clear_device_cache()
        np.random.seed(5)
        adapter = get_data_adapter(x, y, batch_size=4, shuffle=True)
        sizes = iter([1, 1, 3, 3, 2, 1] + [4] * 20)
        current = [1]
        out = []
        for steps, item in adapter.epoch(0, block=lambda current=current: current[0]):
            out.append((steps, np.asarray(item[0])))
            current[0] = next(sizes)
        got[budget] = out
    assert [s for s, _ in got[0.0]] == [s for s, _ in got[None]]
    assert {s for s, _ in got[0.0]} >= {1, 2, 3, 4}
    for (_, a), (_, b) in zip(got[None], got[0.0]):
        np.testing.assert_array_equal(a, b)


class _Interrupt(lm.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise RuntimeError("interrupted")


def test_a_streamed_fit_interrupted_and_resumed_by_backup_and_restore_ends_as_the_device_fit(tmp_path, puts):
    x, y = data()
    args = dict(batch_size=8, epochs=3, shuffle=True, verbose=0)
    reference = model()
    reference.fit(x, y, callbacks=[_Interrupt(-1, -1)], **args)  # same callbacks: one step per call
    assert full_copies(puts, x) == 1

    lm.data.set_device_budget(0.0)
    lm.data.clear_device_cache()  # else the reference's copy would serve the runs below
    backup = lm.callbacks.BackupAndRestore(str(tmp_path / "backup"), save_freq=2)
    with pytest.raises(RuntimeError, match="interrupted"):
        model().fit(x, y, callbacks=[backup, _Interrupt(1, 2)], **args)
    resumed = model()
    history = resumed.fit(x, y, callbacks=[lm.callbacks.BackupAndRestore(str(tmp_path / "backup"), save_freq=2),
                                           _Interrupt(-1, -1)], **args)
    assert history.epoch == [1, 2]
    assert full_copies(puts, x) == 1  # streamed: never copied again
    for a, b in zip(weights(resumed), weights(reference)):
        np.testing.assert_array_equal(a, b)
