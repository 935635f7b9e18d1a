"""fit / evaluate / predict on Grain datasets and loaders give the numbers of the same data as
arrays: batched pipelines taken as they are, unbatched ones batched by lamina."""

import numpy as np
import pytest

from tests.data.ecosystem_cases import (
    BATCH,
    N,
    X,
    Y,
    assert_same,
    make_model,
    run,
)

grain = pytest.importorskip("grain")


def _samples(x, y, sw):
    def row(i):
        xi = {k: v[i] for k, v in x.items()} if isinstance(x, dict) else x[i]
        rest = [part[i] for part in (y, sw) if part is not None]
        return (xi, *rest) if rest else xi

    return [row(i) for i in range(len(x["a"] if isinstance(x, dict) else x))]


def map_source(x, y, sw):
    return {"x": grain.MapDataset.source(_samples(x, y, sw))}


def batched_map_source(x, y, sw):
    return {"x": grain.MapDataset.source(_samples(x, y, sw)).batch(BATCH)}


def loader_source(x, y, sw):
    samples = _samples(x, y, sw)
    sampler = grain.samplers.IndexSampler(len(samples), shuffle=False, num_epochs=1)
    return {"x": grain.DataLoader(data_source=samples, sampler=sampler, operations=[grain.transforms.Batch(BATCH)])}


@pytest.mark.parametrize("case", ["shuffled", "dict_inputs"])
def test_unbatched_map_dataset_is_batched_and_shuffled_as_arrays(case):
    assert_same(run(case, map_source), case)


@pytest.mark.parametrize("case", ["weighted_spe4"])
def test_batched_map_dataset_numbers_equal_arrays(case):
    assert_same(run(case, batched_map_source), case)


# The other cases run on every batch source in test_ecosystem_tf.py (the same adapter).
@pytest.mark.parametrize("case", ["steps_class_weight"])
def test_dataloader_numbers_equal_arrays(case):
    assert_same(run(case, loader_source), case)


def test_iter_datasets_and_loaders_batched_or_not_and_the_steps_they_report():
    from lamina.data import get_data_adapter

    source = grain.MapDataset.source(_samples(X, Y, None))
    model = make_model(False)
    want = model.evaluate(X, Y, batch_size=BATCH, verbose=0)
    sampler = grain.samplers.IndexSampler(N, shuffle=False, num_epochs=1)
    unbatched_loader = grain.DataLoader(data_source=_samples(X, Y, None), sampler=sampler)
    for data in (source.to_iter_dataset().batch(BATCH), source.to_iter_dataset(), unbatched_loader):
        np.testing.assert_allclose(model.evaluate(data, batch_size=BATCH, verbose=0), want, rtol=1e-6)
    assert get_data_adapter(source.batch(BATCH)).steps_per_epoch == 6
    assert get_data_adapter(source.to_iter_dataset()).steps_per_epoch is None


def test_sources_that_do_not_fit_are_clear_errors():
    model = make_model(False)
    four = grain.MapDataset.source([(x, y, y, y) for x, y in zip(X, Y)])
    with pytest.raises(ValueError, match=r"a grain.MapDataset\).*length 4"):
        model.fit(four.batch(BATCH), verbose=0)
    with pytest.raises(ValueError, match=r"grain.MapDataset passed as `x` is endless and unbatched"):
        model.fit(four.repeat(), verbose=0)
