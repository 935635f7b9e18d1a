"""``predict`` on the CPU backend stages NumPy batches of 1 to 16 MiB (lamina/data/staging.py): each batch
is copied into a reused aligned buffer that the device reads in place, and the step slices its
batch out of it. What users see must not change: the same outputs (bit-equal), no stale rows
from an earlier batch or call, safe with threads and with a predict stopped half-way."""

import threading

import numpy as np
import pytest

import lamina as lm
from lamina.data import array_adapter, staging
from lamina.data.array_adapter import ArrayDataAdapter


def _mlp(inputs=6, seed=0):
    lm.random.set_seed(seed)
    return lm.Sequential([lm.Input((inputs,)), lm.layers.Dense(8, activation="relu"), lm.layers.Dense(3)])


def _per_batch(model, x, batch):
    """The reference: each batch through the model's own call, no staging."""
    return np.concatenate([np.asarray(model(x[i : i + batch])) for i in range(0, len(x), batch)])


@pytest.fixture
def small_chunks(monkeypatch):
    """The tests' tiny batches staged, two batches of 8 rows of 6 floats per slot, so that a
    predict fills each slot several times."""
    monkeypatch.setattr(staging, "MIN_BATCH_BYTES", 0)
    monkeypatch.setattr(staging, "CHUNK_BYTES", 2 * 8 * 6 * 4)


def test_chunk_stager_gives_each_batch_and_pads_the_last_with_the_last_sample():
    x = np.arange(30.0, dtype=np.float32).reshape(10, 3)
    stager = staging.ChunkStager([x], batch_size=4)
    rows = []
    for i in range(3):  # two whole batches and the partial one, padded whole
        item = stager.batch(i)
        rows.append(np.array(item.chunk[0][item.start : item.start + item.rows]))
    stager.close()
    np.testing.assert_array_equal(np.concatenate(rows[:2]), x[:8])
    np.testing.assert_array_equal(rows[2], np.stack([x[8], x[9], x[9], x[9]]))


def test_a_chunk_holds_a_number_of_batches_fixed_by_the_batch_not_the_data():
    small, large = np.zeros((40, 784), np.float32), np.zeros((60_000, 784), np.float32)
    assert staging.batches_per_chunk([small], 1024) == staging.batches_per_chunk([large], 1024) == 5
    assert staging.batches_per_chunk([large], 8192) == 1  # a batch above the chunk size: one
    assert staging.batches_per_chunk([np.zeros((4, 1), np.int8)], 1) == staging.MAX_BATCHES_PER_CHUNK


def test_only_numeric_batches_from_1_to_16_mib_are_staged():
    rows = np.zeros((10, 784), np.float32)  # 3,136 bytes a row
    assert staging.stageable([rows], 512) and staging.stageable([rows, rows[:, :1]], 334)
    assert not staging.stageable([rows], 256)  # JAX's own transfer is as fast there
    assert not staging.stageable([np.array(["a", "b"])], 1 << 20)
    assert not staging.stageable([np.zeros((2, 224, 224, 3), np.float32)], 1024)  # 616 MB: no


def test_the_cpu_backend_uses_the_staging_buffers_in_place():
    """Why staging pays: the aligned buffers reach the device without a copy."""
    x = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    stager = staging.ChunkStager([x], batch_size=8)
    item = stager.batch(0)
    buffer = stager._slots[0].buffers[0]
    assert stager.in_place and buffer.ctypes.data % 64 == 0
    assert item.chunk[0].unsafe_buffer_pointer() == buffer.ctypes.data
    stager.close()


@pytest.mark.parametrize("rows", [1, 7, 8, 9, 37, 64, 203])
def test_staged_predict_is_bit_equal_to_calling_the_model(small_chunks, rows):
    model = _mlp()
    x = np.random.default_rng(rows).normal(size=(rows, 6)).astype(np.float32)
    got = model.predict(x, batch_size=8, verbose=0)
    assert got.shape == (rows, 3)
    np.testing.assert_array_equal(got, _per_batch(model, x, 8))


def test_whole_batches_come_staged_and_the_tail_as_a_batch(small_chunks):
    x = np.random.default_rng(1).normal(size=(21, 6)).astype(np.float32)
    adapter = ArrayDataAdapter(x, batch_size=8, shuffle=False)
    adapter.stage_batches, adapter.from_host, adapter.pad_partial_batch, adapter.pad_partial_to = True, True, True, 5
    items = [data for _, data in adapter.epoch(0)]
    assert [type(item).__name__ for item in items] == ["StagedBatch", "StagedBatch", "tuple"]
    assert items[2][0].shape == (5, 6)  # padded to the tail's rows, not staged

    shuffled = ArrayDataAdapter(x, batch_size=8, shuffle=True)  # fit's batches are never staged
    shuffled.stage_batches = True
    assert all(isinstance(data, tuple) for _, data in shuffled.epoch(0))


def test_repeated_predicts_on_new_data_reuse_buffers_without_stale_rows(small_chunks):
    model = _mlp()
    rng = np.random.default_rng(2)
    for rows in (45, 45, 13, 45):  # the pool hands the same buffers back each call
        x = rng.normal(size=(rows, 6)).astype(np.float32)
        np.testing.assert_array_equal(model.predict(x, batch_size=8, verbose=0), _per_batch(model, x, 8))


def test_structured_and_integer_inputs_are_staged_per_leaf(small_chunks):
    a, b = lm.Input((4,), name="a"), lm.Input((3,), name="ids", dtype="int32")
    embedded = lm.layers.Flatten()(lm.layers.Embedding(10, 2)(b))
    model = lm.Model({"a": a, "ids": b}, lm.layers.Dense(2)(lm.layers.Concatenate()([a, embedded])))
    rng = np.random.default_rng(3)
    x = {"a": rng.normal(size=(29, 4)).astype(np.float32), "ids": rng.integers(0, 10, (29, 3)).astype(np.int32)}
    got = model.predict(x, batch_size=4, verbose=0)
    want = np.concatenate([np.asarray(model({k: v[i : i + 4] for k, v in x.items()})) for i in range(0, 29, 4)])
    np.testing.assert_array_equal(got, want)


def test_a_predict_stopped_by_an_error_leaves_later_predicts_right(small_chunks):
    model = _mlp()
    x = np.random.default_rng(4).normal(size=(40, 6)).astype(np.float32)

    class Stop(lm.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            if batch == 2:
                raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        model.predict(x, batch_size=8, verbose=0, callbacks=[Stop()])
    np.testing.assert_array_equal(model.predict(x, batch_size=8, verbose=0), _per_batch(model, x, 8))


def test_two_threads_predicting_at_once_each_get_their_own_rows(small_chunks):
    models = [_mlp(seed=s) for s in (0, 1)]
    rng = np.random.default_rng(5)
    data = [rng.normal(size=(203, 6)).astype(np.float32) for _ in models]
    want = [_per_batch(m, x, 8) for m, x in zip(models, data)]
    got, errors = [[] for _ in models], []

    def work(i):
        try:
            for _ in range(5):
                got[i].append(models[i].predict(data[i], batch_size=8, verbose=0))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for outputs, expected in zip(got, want):
        for output in outputs:
            np.testing.assert_array_equal(output, expected)


def test_an_eager_model_predicts_unstaged(monkeypatch):
    """Staging feeds a compiled step; a model compiled with ``jit_compile=False`` gets batches."""
    def refuse(*args, **kwargs):
        raise AssertionError("an eager predict staged its batches")

    monkeypatch.setattr(array_adapter, "ChunkStager", refuse)
    model = _mlp()
    model.compile(jit_compile=False)
    x = np.random.default_rng(7).normal(size=(20, 6)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, batch_size=8, verbose=0), _per_batch(model, x, 8), rtol=1e-6)


def test_a_slot_is_refilled_only_after_the_steps_that_read_it(monkeypatch):
    """One batch per slot and steps far slower than copying: without the wait for the steps
    reading a slot, the third batch's rows overwrite the first's before its step ran."""
    monkeypatch.setattr(staging, "MIN_BATCH_BYTES", 0)
    monkeypatch.setattr(staging, "CHUNK_BYTES", 1)
    lm.random.set_seed(0)
    model = lm.Sequential([lm.Input((784,)), lm.layers.Dense(1024, activation="relu"),
                           lm.layers.Dense(1024, activation="relu"), lm.layers.Dense(10)])
    x = np.random.default_rng(9).normal(size=(8 * 256, 784)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, batch_size=256, verbose=0), _per_batch(model, x, 256))
