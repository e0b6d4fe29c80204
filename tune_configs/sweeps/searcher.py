"""Tune's ``OptunaSearch`` on a stored study, each Optuna trial linked to its Tune trial.

:class:`StudySearch` is Ray 2.60's ``OptunaSearch`` (multi-objective) with a database storage
(:mod:`tune_configs.sweeps.study`) and three additions:

* every proposed Optuna trial gets the user attributes ``experiment``, ``experiment_dir`` and
  ``tune_trial_id``; on completion also ``tune_trial_dir`` and ``result_set`` (the Tune trial's
  directory, which holds its result set), so the study says which Tune trial produced each value;
* points to evaluate first are enqueued once per study (``skip_if_exists``), so a second driver
  feeding the same study does not evaluate them again;
* after Tune restores the searcher (``--resume``), Optuna trials of this experiment that are still
  RUNNING in the database but unknown to the restored searcher (proposed after the last saved
  experiment state, then lost with the killed driver) are marked FAIL: Tune proposes their
  replacements, so the study ends with exactly the budgeted number of complete trials. Trials the
  restored searcher knows are re-run by Tune and told when they finish.

Imports Ray: only :func:`tune_configs.sweeps.common.optuna_searcher` imports this module.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from tune_configs.sweeps.study import StudySpec, make_sampler, make_storage

logger = logging.getLogger(__name__)
RESULT_SET_FILE = "summary.json"  # written last of a result set (analysis.resultset)


class StudySearch(OptunaSearch):
    """``OptunaSearch`` on the stored study of ``spec`` (see the module docstring)."""

    def __init__(
        self,
        space: Mapping[str, Any],
        spec: StudySpec,
        metric: Sequence[str],
        mode: Sequence[str],
    ) -> None:
        super().__init__(
            space=dict(space),
            metric=list(metric),
            mode=list(mode),
            sampler=make_sampler(spec.sampler, spec.sampler_seed, spec.startup),
            study_name=spec.study,
            storage=make_storage(spec.url),
        )
        self._experiment = spec.experiment
        self._exp_dir = spec.exp_dir
        study = self.study
        if not study.metric_names:
            with warnings.catch_warnings():  # experimental in Optuna 5, shown by the dashboard
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(list(metric))
        for point in spec.points:
            study.enqueue_trial(dict(point), skip_if_exists=True)

    @property
    def study(self) -> optuna.Study:
        """The stored Optuna study this searcher proposes from and tells to."""
        study = self._ot_study
        assert study is not None, "the study is set up in __init__ (the space is given)"
        return study

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        params: dict[str, Any] | None = super().suggest(trial_id)
        ot_trial = self._ot_trials[trial_id]
        for key, value in (
            ("experiment", self._experiment),
            ("experiment_dir", self._exp_dir),
            ("tune_trial_id", trial_id),
        ):
            ot_trial.set_user_attr(key, value)
        return params

    def trial_dir(self, trial_id: str) -> Path | None:
        """The Tune trial's directory (``<label>_<trial_id>``, :func:`trial_dirname`)."""
        found = sorted(Path(self._exp_dir).glob(f"*_{trial_id}"))
        return next((p for p in found if p.is_dir()), None)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and trial_id not in self._completed_trials:
            path = self.trial_dir(trial_id)
            try:
                if path is not None:
                    ot_trial.set_user_attr("tune_trial_dir", str(path))
                    if (path / RESULT_SET_FILE).is_file():
                        ot_trial.set_user_attr("result_set", str(path))
            except Exception as exc:  # finished already (told before a driver was killed)
                logger.warning("Optuna trial %s: %s", ot_trial.number, exc)
        super().on_trial_complete(trial_id, result=result, error=error)

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        self.fail_orphans()

    def fail_orphans(self) -> list[int]:
        """Mark FAIL this experiment's RUNNING Optuna trials that no Tune trial will finish."""
        known = {t.number for t in self._ot_trials.values()}
        orphans = [
            t
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.user_attrs.get("experiment_dir") == self._exp_dir and t.number not in known
        ]
        for t in orphans:
            self.study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        if orphans:
            logger.warning(
                "marked %d Optuna trial(s) FAIL, proposed but lost with the killed driver: %s",
                len(orphans),
                [t.number for t in orphans],
            )
        return [t.number for t in orphans]
