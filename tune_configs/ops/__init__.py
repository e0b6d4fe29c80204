"""Operations: starting Ray and the processes around it, never the learning itself.

What belongs here: the Ray runtime and every Ray environment variable (:mod:`.runtime`), the one
module that touches private Ray names (:mod:`.ray_internals`), local multi-node clusters on
loopback (:mod:`.cluster`, :mod:`.processes`), the Jobs API client (:mod:`.jobs_client`), the
one-sweep-per-experiment lock (:mod:`.sweeplock`), the trial barriers of the fault drills
(:mod:`.barrier`) and the RLlib benchmarks of ``launch bench`` (:mod:`.bench`). Nothing here
imports a study; nothing here imports Ray at module import time.
"""
