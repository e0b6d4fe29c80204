"""Research studies built on the platform: their runners, not their conclusions.

What belongs here: the adaptivity study (:mod:`.adaptivity`: policies on traffic variants against
each variant's own static front), its reference reach (:mod:`.reach`: controllers tuned knowing
the variant), the searched front (:mod:`.searched_front`: Optuna's multi-objective search
against the grids at equal trial counts) and the paper study's documentation writer
(:mod:`.paper_docs`). Conclusions and acceptance checks live in ``docs/studies/``; the product
(glue, sweeps, policies, ops) never imports a study.
"""
