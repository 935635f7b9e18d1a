"""Variables created under a distribution are created split over 8 simulated CPU devices.

The checks run in one subprocess (placement_script.py): the device count must be set before
JAX starts, and one process doing them all is cheaper than one per test.
"""

import importlib.util
import os

import pytest
from script_runner import run_json_script

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    return run_json_script(os.path.join(HERE, "placement_script.py"), timeout=180,
                           cache_dir=str(tmp_path_factory.mktemp("compilation_cache")))


def test_runs_on_eight_devices(found):
    assert found["devices"] == 8


def test_fsdp_splits_a_large_kernel_by_rows_and_never_builds_it_whole(found):
    kernel = found["fsdp_kernel"]
    assert kernel["spec"] == ["batch", None]  # (1024, 512): the largest dimension
    assert kernel["shards"] == [[128, 512]] and kernel["n_shards"] == 8
    assert found["fsdp_bias"] == {"spec": [], "replicated": True}
    assert found["fsdp_small_kernel_replicated"]  # (512, 64) is under min_size
    memory = found["init_memory"]
    if memory is not None:  # the compiled initializer's output and scratch, per device
        assert memory["output"] == memory["whole"] // 8
        assert memory["output"] + memory["temp"] < memory["whole"] // 4


def test_fsdp_model_and_adam_state_hold_an_eighth_on_device_0(found):
    memory = found["fsdp_memory"]  # 4 Dense 1024x1024 built inside a compiled step, Adam
    assert memory["device0"] <= memory["total"] / 8 + memory["total"] / 100
    assert memory["kernels_as_laid_out"] and memory["kernel_shards"] == [[128, 1024]]


def test_optimizer_slots_take_their_weights_layout(found):
    slots = found["adam_slots"]
    assert slots["adam/mu/wide/kernel"] == [["batch", None], False]
    assert slots["adam/nu/wide/kernel"] == [["batch", None], False]
    for counter in ["adam/iterations", "adam/count", "adam/mu/wide/bias"]:
        assert slots[counter][1], counter
    assert found["ema_slots"] == {"sgd/average/wide/kernel": ["batch", None]}
    assert found["jit_step_slot_devices"] == [8]  # built inside an lm.jit trace


def test_metrics_seeds_and_counters_are_replicated_on_the_mesh(found):
    assert found["replicated_state"] == {
        "mean/total": [True, 8], "mean/count": [True, 8],
        "dropout/seed_generator_state": [True, 8], "adam/iterations": [True, 8],
    }


def test_model_parallel_follows_the_layout_map_first_match(found):
    mp = found["mp"]
    # ".*wide/kernel" comes first and wins over ".*kernel", which also matches.
    assert mp["wide/kernel"] == {"spec": ["batch", "model"], "shards": [[512, 128]]}
    assert mp["narrow/kernel"] == {"spec": [None, "model"], "shards": [[512, 16]]}  # (in, out/4)
    assert mp["wide/bias"] == {"spec": [], "shards": [[512]]}
    assert found["mp_data"] == ["batch", None]


def test_data_parallel_replicates_weights_and_splits_batches(found):
    assert found["dp_replicated"]
    assert found["dp_batch_shards"] == [[2, 1024]]


def test_same_seed_gives_bit_equal_weights_on_one_and_eight_devices(found):
    import lamina as lm

    spec = importlib.util.spec_from_file_location("placement_script", os.path.join(HERE, "placement_script.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    one_device, _ = script.seeded_digest(lm)  # this process: one device, no distribution
    assert found["digest_plain"] == one_device
    assert found["digest_fsdp"] == one_device
    assert found["digest_mp"] == one_device


def test_indivisible_dimension_names_path_key_spec_shape_and_mesh(found):
    message = found["indivisible_error"]
    for part in ["'odd/kernel'", "'.*kernel'", "(None, 'model')", "(4, 6)", "6 is not divisible by 4"]:
        assert part in message, part


def test_fsdp_picks_the_largest_divisible_dimension(found):
    assert found["fsdp_dims"] == [1, None, 0, None]  # ties: the first; too small: None


def test_explain_flags_variables_created_before_the_distribution(found):
    assert found["explain_before"] == {"wide/kernel": "not placed so: its array is on one device",
                                       "wide/bias": "not placed so: its array is on one device"}


def test_initializers_stay_out_of_the_persistent_compilation_cache(found):
    assert found["cache"]["initializers"] == 0
    assert found["cache"]["other"] >= 1  # the cache is on: an ordinary program is written


def test_global_distribution_and_explicit_layouts(found):
    g = found["global"]
    assert g["table"] == [None, "batch"]  # a trainable lm.Variable, placed by its name
    assert g["frozen_replicated"]
    assert g["explicit"] == [[2]] and g["explicit_values"] == list(range(16))
