"""Episode-seed ranges: which episodes each job of the platform runs on.

An episode is a pure function of its reset seed (docs/model/cell.md#seed-ranges), so keeping
jobs apart is a matter of seed ranges. Every range the platform uses is named here and
documented in that section (a test checks that the two agree):

============================  ==========  ===================================================
range                         first seed  used by
============================  ==========  ===================================================
:data:`EVALUATION`            0           reported numbers: ``launch static``, ``launch eval``,
                                          ``launch pool-compare`` and every sweep's final
                                          evaluation (``--seed``, ``eval_seed``; N episodes)
:data:`STUDY_TUNING`          5,000       the adaptivity study: choosing checkpoints, tuning
                                          rules per variant (``launch adapt select/reach``)
:data:`POOL_CLAIMS`           7,000       the learned pool controllers' claims on unseen
                                          episodes (docs/studies/pool-learning.md)
:data:`STUDY_EVALUATION`      20,000      the adaptivity study's claims (``launch adapt study``)
:data:`RULE_SEARCH`           1,000,000   the rules' split searches (greedy, non-cooperative,
                                          the greedy base splits of residual controllers) and
                                          choosing one training seed per reward setting
                                          (``launch export --sweep``)
:data:`POOL_SELECTION`        3,000,000   choosing a shipped pool policy among training runs
                                          (``launch export --pool-runs``)
============================  ==========  ===================================================

Training episodes come from RLlib's seed ``s`` (``launch train --seed``, a sweep's training
seeds): the first episode of sub-env ``i`` has seed ``s + i`` (64 sub-envs by default), every
later one a 63-bit seed drawn from the sub-env's generator. Those first episodes therefore share
seeds with :data:`EVALUATION` (episodes 0..99) for small training seeds; the study ranges above
are clear of them.
"""

from __future__ import annotations

EVALUATION = 0
STUDY_TUNING = 5_000
POOL_CLAIMS = 7_000
STUDY_EVALUATION = 20_000
RULE_SEARCH = 1_000_000
POOL_SELECTION = 3_000_000

RANGES: dict[str, int] = {
    "EVALUATION": EVALUATION,
    "STUDY_TUNING": STUDY_TUNING,
    "POOL_CLAIMS": POOL_CLAIMS,
    "STUDY_EVALUATION": STUDY_EVALUATION,
    "RULE_SEARCH": RULE_SEARCH,
    "POOL_SELECTION": POOL_SELECTION,
}
