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

    print(json.dumps({"joined": joined, "processes": jax.process_count(), "seed": lm.random.draw_seed()}), flush=True)
    # Neither process leaves before both are done: process 0 hosts the coordination service,
    # and its shutting down while process 1 was still in the seed broadcast's collective hung
    # process 1 in one CI run out of five. This barrier goes through the coordination service
    # (gRPC), not through a collective.
    from jax._src import distributed

    distributed.global_state.client.wait_at_barrier("two_process_script_done", 60_000)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
