"""``lm.data.PyDataset``: Keras's data class, with batches loaded ahead by a thread or process
pool (``workers``, ``use_multiprocessing``, ``max_queue_size``), always in order."""

import os
import threading
import time
import warnings

import numpy as np
import pytest
from pydataset_sources import Ranges

import lamina as lm


class Slow(lm.data.PyDataset):
    """A PyDataset whose batches take a while and that counts the loads running at once."""

    def __init__(self, batches=8, delay=0.05, fail_at=None, **kwargs):
        super().__init__(**kwargs)
        self.batches, self.delay, self.fail_at = batches, delay, fail_at
        self.lock = threading.Lock()
        self.running = self.most_running = 0
        self.loaded, self.events = [], []
        rng = np.random.default_rng(0)
        self.x = rng.random((batches * 4, 3)).astype("float32")
        self.y = rng.random((batches * 4, 1)).astype("float32")

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(self.delay)
            if index == self.fail_at:
                raise KeyError(f"no batch {index}")
            return self.x[4 * index:4 * index + 4], self.y[4 * index:4 * index + 4]
        finally:
            with self.lock:
                self.running -= 1
                self.loaded.append(index)

    def on_epoch_end(self):
        self.events.append(("epoch_end", self.running))


def _batches(dataset, shuffle=False, block=1, seed=0):
    np.random.seed(seed)
    adapter = lm.data.get_data_adapter(dataset, shuffle=shuffle)
    return [np.asarray(data[0]) for _, data in adapter.epoch(0, block=block)]


@pytest.mark.parametrize("shuffle", [False, True])
def test_several_workers_give_the_batches_of_one_in_the_same_order(shuffle):
    one = _batches(Slow(delay=0.0, workers=1), shuffle=shuffle)
    four = _batches(Slow(delay=0.0, workers=4, max_queue_size=3), shuffle=shuffle)
    assert len(four) == len(one) == 8
    for a, b in zip(four, one):
        np.testing.assert_array_equal(a, b)
    blocks = _batches(Slow(delay=0.0, workers=4), shuffle=shuffle, block=4)
    np.testing.assert_array_equal(np.concatenate([b.reshape(-1, 3) for b in blocks]), np.concatenate(one))


def test_workers_load_batches_concurrently_and_one_worker_does_not():
    single, pool = Slow(delay=0.03, workers=1), Slow(delay=0.03, workers=4)
    _batches(single)
    _batches(pool)
    assert single.most_running == 1
    assert pool.most_running >= 2  # loads overlapped (4 threads, 8 slow batches)


def test_max_queue_size_bounds_how_many_batches_load_ahead():
    dataset = Slow(delay=0.03, workers=4, max_queue_size=2)
    _batches(dataset)
    assert dataset.most_running <= 2


def test_on_epoch_end_runs_after_the_pool_stopped_even_when_training_stops_early():
    class StopAfterTwo(lm.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    dataset = Slow(delay=0.02, workers=4, max_queue_size=6)
    model = lm.Sequential([lm.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(dataset, epochs=3, callbacks=[StopAfterTwo()], verbose=0)
    assert dataset.events == [("epoch_end", 0)]  # nothing was loading any more
    assert not [t for t in threading.enumerate() if t.name.startswith("lamina-pydataset")]
    assert len(dataset.loaded) <= 2 + 6  # the two batches run, at most a queue ahead


class ExamplePyDataset(lm.utils.PyDataset):
    """The training guide's PyDataset, as written there (``keras.utils`` -> ``lm.utils``)."""

    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x = x
        self.y = y
        self.batch_size = batch_size

    def __len__(self):
        return int(np.ceil(len(self.x) / float(self.batch_size)))

    def __getitem__(self, idx):
        batch_x = self.x[idx * self.batch_size : (idx + 1) * self.batch_size]
        batch_y = self.y[idx * self.batch_size : (idx + 1) * self.batch_size]
        return batch_x, batch_y


def test_fit_on_the_guides_pydataset_with_workers_equals_one_worker():
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 3)).astype("float32"), rng.random((40, 1)).astype("float32")
    histories = []
    for workers in (1, 4):
        lm.random.set_seed(0)
        model = lm.Sequential([lm.layers.Dense(4, activation="relu"), lm.layers.Dense(1)])
        model.compile("adam", "mse")
        train = ExamplePyDataset(x, y, batch_size=8, workers=workers)
        val = ExamplePyDataset(x[:16], y[:16], batch_size=8, workers=workers)
        # batch_size is ignored: the dataset makes the batches (as in the guide).
        histories.append(model.fit(train, batch_size=64, validation_data=val, epochs=1, verbose=0).history)
    assert set(histories[0]) == {"loss", "val_loss"}
    assert histories[1] == histories[0]


def test_an_error_in_a_worker_thread_names_the_batch():
    with pytest.raises(KeyError, match="no batch 5") as info:
        _batches(Slow(delay=0.0, workers=3, fail_at=5))
    assert any("batch 5 of Slow in a worker thread" in note for note in info.value.__notes__)


def test_processes_load_batches_in_order_and_see_on_epoch_end_changes():
    # One process (Keras's rule: workers=1 with use_multiprocessing is a pool of one): each
    # epoch spawns fresh interpreters, which is what this test pays for.
    dataset = Ranges(batches=5, workers=1, use_multiprocessing=True)
    adapter = lm.data.get_data_adapter(dataset, shuffle=False)
    for epoch in range(2):
        batches = [tuple(np.asarray(a) for a in data[:2]) for _, data in adapter.epoch(epoch)]
        x = np.concatenate([b[0] for b in batches]).ravel()
        np.testing.assert_array_equal(x, np.arange(20) + 100 * epoch)
        pids = {int(p) for b in batches for p in b[1].ravel()}
        assert os.getpid() not in pids and len(pids) == 1


def test_use_multiprocessing_refuses_a_dataset_that_does_not_pickle():
    dataset = Slow(workers=2, use_multiprocessing=True)  # holds a threading.Lock
    adapter = lm.data.get_data_adapter(dataset, shuffle=False)
    with pytest.raises(ValueError, match=r"Slow has use_multiprocessing=True, but it cannot be pickled.*"
                                         r"use_multiprocessing=False"):
        next(iter(adapter.epoch(0)))


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_loops_refuse_keras2_loading_arguments_and_say_where_they_go(method):
    model = lm.Sequential([lm.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((4, 2), "float32")
    args = (x,) if method == "predict" else (x, np.ones((4, 1), "float32"))
    with pytest.raises(ValueError, match=rf"{method}\(\) does not take `workers`, `use_multiprocessing`.*"
                                         r"lm.data.PyDataset.*super\(\).__init__\(workers=4, "
                                         r"use_multiprocessing=True\)"):
        getattr(model, method)(*args, workers=4, use_multiprocessing=True, verbose=0)
    with pytest.raises(TypeError, match=rf"{method}\(\) got unexpected keyword arguments: bogus"):
        getattr(model, method)(*args, bogus=1, verbose=0)


def test_a_subclass_without_super_init_warns_and_uses_the_defaults():
    class NoInit(lm.data.PyDataset):
        def __init__(self):
            self.x = np.ones((8, 2), "float32")

        def __len__(self):
            return 2

        def __getitem__(self, index):
            return self.x[4 * index:4 * index + 4]

    dataset = NoInit()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert (dataset.workers, dataset.use_multiprocessing, dataset.max_queue_size) == (1, False, 10)
    assert any("super().__init__(**kwargs)" in str(w.message) for w in caught)
    assert len(_batches(dataset)) == 2


def test_bad_settings_and_num_batches_are_clear_errors():
    with pytest.raises(ValueError, match=r"`workers` must be an integer >= 0; received -1"):
        Ranges(workers=-1)
    with pytest.raises(ValueError, match=r"`max_queue_size` must be an integer >= 1; received 0"):
        Ranges(max_queue_size=0)

    class Endless(Ranges):
        @property
        def num_batches(self):
            return None

    with pytest.raises(ValueError, match=r"endless \(num_batches is None\): pass `steps_per_epoch`"):
        lm.data.get_data_adapter(Endless())


def test_num_batches_alone_defines_the_length():
    class ByProperty(Ranges):
        @property
        def num_batches(self):
            return 3

    assert len(_batches(ByProperty(batches=10))) == 3


def test_an_endless_pydataset_runs_steps_per_epoch_batches_carrying_on_across_epochs():
    class Endless(Ranges):
        @property
        def num_batches(self):
            return None

        def __getitem__(self, index):
            return super().__getitem__(index)[0]

    dataset = Endless(workers=2)
    adapter = lm.data.get_data_adapter(dataset, steps_per_epoch=3, shuffle=True)
    firsts = [[float(np.asarray(data[0])[0, 0]) for _, data in adapter.epoch(e)] for e in range(2)]
    # Batch i starts at 4 i (+ 100 per finished epoch): indices 0-2, then 3-5.
    assert firsts == [[0.0, 4.0, 8.0], [112.0, 116.0, 120.0]]
    model = lm.Sequential([lm.layers.Dense(1)])
    model.compile("sgd", "mse")
    assert len(model.predict(Endless(), steps=2, verbose=0)) == 8
