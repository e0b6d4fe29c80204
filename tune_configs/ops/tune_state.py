"""Tune's saved experiment state, checked and mended before a sweep resumes.

A Tune driver saves its state in the experiment directory as files named by the driver's
session (``S``, a time stamp), one set per driver start:

* ``experiment_state-S.json``: every trial Tune knows (its id, config, status, checkpoints);
* ``basic-variant-state-S.json`` (a pickle despite the name): the grid/random search algorithm,
  i.e. how many of the sweep's trials it has handed out so far (grid sweeps);
* ``search_gen_state-S.json`` and ``searcher-state-S.pkl``: the same for a searcher (Optuna);
* ``callback-states-S.pkl``: the callbacks' state (the sweep's progress printer).

Tune writes each file atomically in the driver's staging directory, then *copies* the staging
directory into the experiment directory, and that copy is not atomic. A driver killed during
the copy leaves a file cut short, or a set of files from two different saves. ``--resume``
loads the newest file of each kind; the chaos soak (``docs/studies/chaos-soak.md``) hit a cut
``basic-variant-state-S.json`` and the resume failed with ``EOFError``. Worse, a search state
older than the experiment state it is loaded with hands out again trials Tune already has (the
same trial ids: duplicates), and a newer one has handed out trials Tune never saw (lost).

:func:`mend` runs before every ``--resume`` and makes the newest set whole and consistent:

1. the newest ``experiment_state`` that loads is the truth; a cut one is set aside with every
   file of its session (into ``cut-state/``, never deleted), and the previous save is used.
   With none left (or none saved yet), Tune's resume would start the sweep from the beginning
   in the same directory: allowed only while no trial has finished, refused otherwise;
2. the grid search state must have handed out exactly the trials of that experiment state (the
   trial ids ``<prefix>_00000 ...`` Tune numbers them with). If the newest one is cut or does
   not match, the newest saved search state that has handed out a subset of them is brought
   forward by the search algorithm itself, and each trial it hands out must have the id and the
   experiment tag (its grid point) the experiment state records; the result is saved under the
   session's name (atomically, the bad file set aside). So nothing is run twice or skipped;
3. a searcher's state (Optuna sweeps) cannot be brought forward without asking the searcher
   for new points; a cut or mismatched one is refused by name (:class:`StateProblem`) with what
   to do. Cut callback states are set aside (an older one, or none, is used: they hold only
   progress counts).

This module knows Tune's file names; what it needs of the grid search algorithm's saved
attributes is in :mod:`tune_configs.ops.ray_internals` (checked against the installed Ray by
``tests/tune_configs/ops/test_ray_internals.py``), and :func:`problems` checks the file
names against the installed Tune. Files in an
experiment directory are the platform's own output; reading them unpickles, as Tune's resume does
(``docs/trusted-inputs.md``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tune_configs.ops.ray_internals import grid_brought_forward, grid_handed_out

CUT_DIR = "cut-state"  # where set-aside state files go, inside the experiment directory
EXPERIMENT = "experiment_state-{}.json"
VARIANTS = "basic-variant-state-{}.json"
SEARCH = "search_gen_state-{}.json"
SEARCHER = "searcher-state-{}.pkl"
CALLBACKS = "callback-states-{}.pkl"
KINDS = (EXPERIMENT, VARIANTS, SEARCH, SEARCHER, CALLBACKS)
LIVE = ("PENDING", "RUNNING", "PAUSED")  # Tune's trial statuses a search algorithm counts live


class StateProblem(ValueError):
    """The saved state cannot be made consistent; the message names the file and what to do."""


def session_of(path: Path, template: str) -> str:
    """``S`` of a state file named ``template.format(S)``."""
    head, tail = template.split("{}")
    return path.name[len(head) : len(path.name) - len(tail)]


def saved(exp: Path, template: str) -> list[Path]:
    """The state files of one kind, oldest session first (Tune loads the last)."""
    return sorted(exp.glob(template.format("*")))


def set_aside(exp: Path, files: list[Path]) -> list[str]:
    """Move ``files`` into ``exp/cut-state/`` (a name taken gets a numbered suffix)."""
    target = exp / CUT_DIR
    target.mkdir(exist_ok=True)
    moved = []
    for f in files:
        dest, n = target / f.name, 1
        while dest.exists():
            dest, n = target / f"{f.name}.{n}", n + 1
        f.replace(dest)
        moved.append(f.name)
    return moved


def load_experiment_state(path: Path) -> dict[str, Any]:
    """An ``experiment_state`` file as Tune's resume reads it (``ValueError`` when it cannot)."""
    from ray.tune.utils.serialization import TuneFunctionDecoder

    try:
        # Tune's own state, read as Tune's resume reads it (objects it could not write as JSON
        # are embedded pickles: trusted as the rest of the experiment directory)
        state = json.loads(path.read_text(), cls=TuneFunctionDecoder, allow_cloudpickle=True)
        trials = [json.loads(t) for t, _meta in state["trial_data"]]
        return {"trials": trials, "path": path}
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


def load_pickle(path: Path) -> Any:
    """A pickled state file as Tune's ``_load_newest_checkpoint`` reads it (``ValueError``)."""
    import ray.cloudpickle as cloudpickle

    try:
        with open(path, "rb") as f:
            return cloudpickle.load(f)
    except Exception as exc:  # a cut pickle raises EOFError, UnpicklingError, ValueError ...
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


def mend(exp: Path) -> list[str]:
    """Make the newest saved state of experiment ``exp`` whole and consistent (module
    docstring); what was done, one line each (empty: nothing to mend)."""
    notes: list[str] = []
    current = _newest_experiment_state(exp, notes)
    if current is None:
        return _without_experiment_state(exp, notes)
    notes += _mend_callbacks(exp)
    if saved(exp, VARIANTS):
        notes += _mend_variants(exp, current)
    if saved(exp, SEARCH) or saved(exp, SEARCHER):
        _check_searcher(exp, current)
    return notes


def _newest_experiment_state(exp: Path, notes: list[str]) -> dict[str, Any] | None:
    while states := saved(exp, EXPERIMENT):
        newest = states[-1]
        try:
            current = load_experiment_state(newest)
        except ValueError as exc:
            session = session_of(newest, EXPERIMENT)
            moved = set_aside(exp, [p for k in KINDS if (p := exp / k.format(session)).exists()])
            previous = states[-2].name if len(states) > 1 else None
            notes.append(
                f"{newest.name} is cut short ({exc}): set aside with its session's files "
                f"({', '.join(moved)}) in {exp / CUT_DIR}; "
                + (
                    f"resuming from {previous} (trials Tune created after it start again)"
                    if previous
                    else "no earlier saved state"
                )
            )
            continue
        current["session"] = session_of(newest, EXPERIMENT)
        return current
    return None


def _without_experiment_state(exp: Path, notes: list[str]) -> list[str]:
    """No experiment state to resume from (none saved yet, or every one cut): Tune's resume
    would start the sweep from the beginning, which is right only if no trial has finished."""
    from analysis.resultset import SUMMARY_FILE

    if not (exp / "tuner.pkl").is_file():
        return notes  # not a Tune experiment: the caller says there is nothing to resume
    finished = sorted(p.parent.name for p in exp.glob(f"*/{SUMMARY_FILE}"))
    if finished:
        raise StateProblem(
            f"no Tune experiment state in {exp} to resume from, but {len(finished)} trial(s) "
            f"finished ({', '.join(finished[:3])}{', ...' if len(finished) > 3 else ''}): "
            f"starting the sweep again there would run them twice. Start under a new --name "
            f"(finished result sets of this experiment stay readable by launch report)."
        )
    return [
        *notes,
        "no Tune experiment state saved yet (the driver was stopped before its first save) and "
        "no trial finished: the sweep starts from the beginning",
    ]


def _mend_callbacks(exp: Path) -> list[str]:
    notes = []
    while files := saved(exp, CALLBACKS):
        try:
            load_pickle(files[-1])
            break
        except ValueError as exc:
            set_aside(exp, [files[-1]])
            notes.append(f"{files[-1].name} is cut short ({exc}): set aside (progress counts only)")
    return notes


def _mend_variants(exp: Path, current: Mapping[str, Any]) -> list[str]:
    """Step 2 of the module docstring."""
    trials = current["trials"]
    ids = [t["trial_id"] for t in trials]
    tags = {t["trial_id"]: t.get("experiment_tag") for t in trials}
    # What a consistent save holds as live: trials handed out and not yet complete (Tune tells
    # the search algorithm when a trial ends, errored or not).
    live = {t["trial_id"] for t in trials if t.get("status") in LIVE}
    session = current["session"]
    target = exp / VARIANTS.format(session)
    files = saved(exp, VARIANTS)
    problem = _variants_problem(files[-1], target, current["path"], ids)
    if problem is None:
        return []
    bad = [p for p in files if p.name >= target.name]  # what Tune would load instead
    for candidate in reversed(files):
        if candidate.name >= target.name and candidate != target:
            continue
        try:
            state = load_pickle(candidate)
        except ValueError:
            continue
        generator = grid_brought_forward(
            state, ids, lambda trial: trial.experiment_tag == tags[trial.trial_id], live
        )
        if generator is None:
            continue
        moved = set_aside(exp, bad)
        generator.save_to_dir(str(exp), session_str=session)
        return [
            f"{problem}: set aside {', '.join(moved)} in {exp / CUT_DIR}; the search state of "
            f"{candidate.name} brought forward to the {len(ids)} trials of "
            f"{current['path'].name} and saved as {target.name}"
        ]
    raise StateProblem(
        f"{problem}, and no saved search state in {exp} can be brought forward to the "
        f"{len(ids)} trials of {current['path'].name}. Resuming would run trials twice or skip "
        f"some. Start the sweep again under a new --name (finished result sets of this "
        f"experiment stay readable by launch report)."
    )


def _variants_problem(newest: Path, target: Path, experiment: Path, ids: list[str]) -> str | None:
    """Why Tune's choice of grid search state (``newest``) does not fit the experiment state
    (``None``: it fits)."""
    if newest != target:
        return f"{newest.name} is not of the session of {experiment.name}"
    try:
        state = load_pickle(newest)
    except ValueError as exc:
        return f"{newest.name} is cut short ({exc})"
    given = grid_handed_out(state)
    if given is None:
        return None  # not a state this module understands: left to Tune
    if sorted(given) != sorted(ids):
        return (
            f"{newest.name} has handed out {len(given)} trials, its experiment state knows "
            f"{len(ids)}"
        )
    return None


def _check_searcher(exp: Path, current: Mapping[str, Any]) -> None:
    """Step 3 of the module docstring: refuse, by name, a cut or foreign searcher state."""
    session = current["session"]
    for template in (SEARCH, SEARCHER):
        files = saved(exp, template)
        if not files:
            continue
        newest, target = files[-1], exp / template.format(session)
        if newest != target:
            why = f"{newest.name} is not of the session of {current['path'].name}"
        else:
            try:
                state = load_pickle(newest)
            except ValueError as exc:
                why = f"{newest.name} is cut short ({exc})"
            else:
                created = state.get("counter") if template == SEARCH else None
                if created is None or created == len(current["trials"]):
                    continue
                why = (
                    f"{newest.name} has created {created} trials, {current['path'].name} "
                    f"knows {len(current['trials'])}"
                )
        raise StateProblem(
            f"{why}: the searcher's saved state does not match the trials Tune saved, so a "
            f"resume could run trials twice or skip some (a driver killed while Tune copied its "
            f"state). Start again under a new --name; the study in the database keeps every "
            f"finished trial (--set study=... to continue it in the new experiment)."
        )


def problems() -> list[str]:
    """State file names of the installed Tune that differ from the ones mended here."""
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.search_generator import SearchGenerator

    return [
        f"{cls.__name__}.CKPT_FILE_TMPL is not {template!r} any more"
        for cls, template in (
            (TuneController, EXPERIMENT),
            (BasicVariantGenerator, VARIANTS),
            (SearchGenerator, SEARCH),
        )
        if getattr(cls, "CKPT_FILE_TMPL", None) != template
    ]
