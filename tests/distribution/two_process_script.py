"""One of the two processes of test_initialize.py: joins the run, prints what it sees."""

import json
import os
import sys


def main(process_id: int, port: str) -> None:
    os.environ["JAX_PLATFORMS"] = "cpu"
    import lamina as lm

    if process_id == 1:
        lm.random.set_seed(99)  # another position in the seed stream than process 0's
    joined = lm.distribution.initialize(f"localhost:{port}", num_processes=2, process_id=process_id)
    import jax

    print(json.dumps({"joined": joined, "processes": jax.process_count(), "seed": lm.random.draw_seed()}))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
