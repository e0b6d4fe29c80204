"""Everything RLlib and Tune, in rooms by job.

The glue at this level: env registration (:mod:`.env`), the metrics callbacks (:mod:`.callbacks`),
the base PPO configuration every controller extends (:mod:`.ppo`), the one training sequence
(:mod:`.training`), the one trial runner of every sweep (:mod:`.trials`), shipping policies
(:mod:`.export`) and choosing one among training runs (:mod:`.selection`). The rooms below:
:mod:`.controllers` (one registry entry per learned controller), :mod:`.policies` (trained
policies outside RLlib, numpy only at import), :mod:`.ops` (Ray runtime, clusters, jobs, drills,
benchmarks), :mod:`.sweeps` (one module per named sweep and their registry) and :mod:`.studies`
(research studies; nothing else imports them). The import contracts in ``pyproject.toml`` keep
these promises.
"""
