"""resume_script.py's training on 8 simulated CPU devices under data parallel, for the kill
test in test_kill_resume_data_parallel.py (run as a subprocess; same arguments):

    python resume_data_parallel_script.py BACKUP_DIR OUT.safetensors [--hang-at EPOCH BATCH MARKER]

The model, data, callbacks and steps are resume_script.py's; only the distribution differs.
The last line printed is a JSON object: how many devices the first kernel was spread over.
"""

import json
import os
import sys


def main(argv) -> None:
    # Before JAX starts (and not when pytest imports this file for doctests). Intra-op threads
    # off and a collective timeout, as in tests/distribution/training_script.py.
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + (" --xla_force_host_platform_device_count=8 --xla_cpu_multi_thread_eigen=false "
                               "--xla_cpu_collective_call_terminate_timeout_seconds=120")
    os.environ["JAX_PLATFORMS"] = "cpu"
    import resume_script

    import lamina as lm

    seen = {}

    def record_layout(self, logs=None):  # on the callback every run has
        seen["kernel_devices"] = len(self.model.trainable_weights[0].value.sharding.device_set)

    resume_script.HangAt.on_train_begin = record_layout
    lm.distribution.set_distribution(lm.distribution.DataParallel())
    resume_script.main(argv)
    print(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv)
