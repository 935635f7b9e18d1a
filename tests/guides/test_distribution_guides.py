"""Ports of the Keras guides "Distributed training with Keras" (guides/distribution.py) and
"Multi-GPU distributed training with JAX" (guides/distributed_training_with_jax.py), run on 8
simulated CPU devices in one subprocess (distribution_guides_script.py: the device count must
be set before JAX starts). Its docstring lists the translation."""

import os

import numpy as np
import pytest
from script_runner import run_json_script

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    return run_json_script(os.path.join(HERE, "distribution_guides_script.py"), timeout=240,
                           cache_dir=str(tmp_path_factory.mktemp("compilation_cache")))


def test_devices_are_listed_and_counted_as_keras_names_them(found):
    assert found["devices"] == [f"cpu:{i}" for i in range(8)]
    assert found["device_count"] == 8


def test_tensor_layout_and_distribute_tensor(found):
    assert found["layout_2d"] == [["model", "data"], [2, 4]]
    # (8, 4) split 4 ways on rows ("model") and 2 ways on columns ("data"): (2, 2) shards
    assert found["distribute_tensor"] == {"spec": ["model", "data"], "shards": [[2, 2]], "values": True}


def test_data_parallel_builds_replicated_weights_and_trains(found):
    assert found["active_is_data_parallel"] and found["dp_kernel_replicated"]
    assert found["dp_summary_params"] == "159,010"
    first, second = found["dp_fit_loss"]
    assert np.isfinite(first) and second < first


def test_model_parallel_lays_out_the_mapped_weights_and_the_layer_output(found):
    assert found["active_is_model_parallel"]
    assert found["mp_kernel"] == {"spec": [None, "model"], "shards": [[784, 50]]}  # 200 units over 4
    assert found["mp_bias"] == ["model"]
    assert found["mp_kernel_after_fit"] == [None, "model"]
    # "sequential/d2/output": ("data", None) makes the output split by rows; without the key the
    # same model's output is not.
    assert found["mp_output_spec"] in (["data"], ["data", None])
    assert found["plain_output_spec"] not in (["data"], ["data", None])
    first, second = found["mp_fit_loss"]
    assert np.isfinite(first) and second < first


def test_hand_written_jax_loop_over_sharded_batches(found):
    assert found["jax_sharded_batch"] == {"spec": ["batch"], "shards": [[8, 28, 28, 1]]}  # 64 rows / 8
    sharded, whole = found["jax_first_loss"]
    np.testing.assert_allclose(sharded, whole, rtol=1e-5)
    assert found["jax_state_replicated"]
    first, second = found["jax_epoch_losses"]
    assert np.isfinite(first) and second < first
    assert found["jax_written_back"]
    assert found["jax_predict_shape"] == [8, 10]
