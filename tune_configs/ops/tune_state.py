"""Tune's saved experiment state, checked and mended before a sweep resumes.

A Tune driver saves its state in the experiment directory as files named by the driver's
session (``S``, a time stamp), one set per driver start:

* ``experiment_state-S.json``: every trial Tune knows (its id, config, status, checkpoints);
* ``basic-variant-state-S.json`` (a pickle despite the name): the grid/random search algorithm,
  i.e. how many of the sweep's trials it has handed out so far (grid sweeps);
* ``search_gen_state-S.json`` and ``searcher-state-S.pkl``: the same for a searcher (Optuna);
* ``callback-states-S.pkl``: the callbacks' state (the sweep's progress printer).

Tune writes each file atomically in the driver's staging directory, then *copies* the staging
directory into the experiment directory, and that copy is not atomic. Into a plain local file
system, a driver killed during the copy leaves a file cut short, or a set of files from two
different saves. (Sweeps now give Tune a file system that never cuts a file,
:mod:`tune_configs.ops.storage`: no file is cut by the copy any more, but a set of files can
still be from two saves, and experiments written before, or by other tools, can be cut.)
``--resume`` loads the newest file of each kind; the chaos soak (``docs/studies/chaos-soak.md``)
hit a cut ``basic-variant-state-S.json`` and the resume failed with ``EOFError``. Worse, a
search state older than the experiment state it is loaded with hands out again trials Tune
already has (the same trial ids: duplicates), and a newer one has handed out trials Tune never
saw (lost).

A full disk cut them the same way (Tune's copy stopped half-way), and then often the only
``experiment_state`` of the experiment. So while a sweep runs, :func:`keep` (called by the
driver's :class:`tune_configs.ops.keeper.StateKeeper` after each of Tune's saves) copies the
driver's newest save, whole, into ``kept-state/``: each file written aside, checked to be whole and
renamed into place, so a copy that fails (a full disk) leaves the previous kept one intact.
The check reads each file whole without unpickling it; ``--resume`` loads the kept copy fully
before it uses it.

:func:`mend` runs before every ``--resume`` and makes the newest set whole and consistent:

1. the newest ``experiment_state`` that loads is the truth; a cut one is set aside with every
   file of its session (into ``cut-state/``, never deleted), and replaced by the copy of that
   session kept in ``kept-state/`` if there is one, else the previous save is used. With none
   left (or none saved yet), Tune's resume would start the sweep from the beginning in the same
   directory: allowed only while no trial has finished, refused otherwise. A save is older
   than the trials' own files: a trial it records as running may have finished since (its
   result set committed and its final result logged). In a grid sweep such a trial is marked
   finished in the saved state, with that final result, so the resume does not run it again
   (a searcher's sweep is left as it is: its searcher was never told the trial's result);
2. the grid search state must have handed out exactly the trials of that experiment state (the
   trial ids ``<prefix>_00000 ...`` Tune numbers them with). If the newest one is cut or does
   not match, the newest saved search state that has handed out a subset of them is brought
   forward by the search algorithm itself, and each trial it hands out must have the id and the
   experiment tag (its grid point) the experiment state records; it then counts as running
   exactly the trials the experiment state records as running (a stale one would hold a slot of
   ``--max-concurrent`` for ever). The result is saved under the session's name (atomically,
   the bad file set aside). So nothing is run twice or skipped;
3. a searcher's state (Optuna sweeps) cannot be brought forward without asking the searcher
   for new points; a cut or mismatched one is replaced, with its session's other files, by the
   kept copy of its session if that copy's searcher and experiment states agree, and refused
   by name (:class:`StateProblem`) with what to do otherwise. Cut callback states are set aside
   (an older one, or none, is used: they hold only progress counts).

This module knows Tune's file names; what it needs of the grid search algorithm's saved
attributes is in :mod:`tune_configs.ops.ray_internals` (checked against the installed Ray by
``tests/tune_configs/ops/test_ray_internals.py``), and :func:`problems` checks the file
names against the installed Tune. Files in an
experiment directory are the platform's own output; reading them unpickles, as Tune's resume does
(``docs/trusted-inputs.md``).
"""

from __future__ import annotations

import json
import os
import pickletools
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tune_configs.ops.ray_internals import grid_brought_forward, grid_handed_out, grid_live

CUT_DIR = "cut-state"  # where set-aside state files go, inside the experiment directory
KEPT_DIR = "kept-state"  # the newest whole save of each driver session (keep)
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


def final_result(result: Mapping[str, Any]) -> bool:
    """A trial's last report (``tune_configs.trials``): evaluation metrics (PPO, a split, the
    pool's rules) or a static block's policy count."""
    return any("eval/" in k for k in result) or "policies" in result


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
    if not (saved(exp, SEARCH) or saved(exp, SEARCHER)):
        notes += _mark_finished(exp, current)
    notes += _mend_callbacks(exp)
    if saved(exp, VARIANTS):
        notes += _mend_variants(exp, current)
    if saved(exp, SEARCH) or saved(exp, SEARCHER):
        notes += _mend_searcher(exp, current)
    return notes


def _newest_experiment_state(exp: Path, notes: list[str]) -> dict[str, Any] | None:
    restored: set[str] = set()
    while states := saved(exp, EXPERIMENT):
        newest = states[-1]
        try:
            current = load_experiment_state(newest)
        except ValueError as exc:
            session = session_of(newest, EXPERIMENT)
            moved = set_aside(exp, [p for k in KINDS if (p := exp / k.format(session)).exists()])
            previous = states[-2].name if len(states) > 1 else None
            kept = [] if session in restored else _restore_kept(exp, session)
            restored.add(session)
            if kept:
                then = "replaced by the copy kept in " + f"{KEPT_DIR}/ ({', '.join(kept)})"
            elif previous:
                then = f"resuming from {previous} (trials Tune created after it start again)"
            else:
                then = "no earlier saved state"
            notes.append(
                f"{newest.name} is cut short ({exc}): set aside with its session's files "
                f"({', '.join(moved)}) in {exp / CUT_DIR}; {then}"
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
            "".join(f"{note}. " for note in notes)
            + f"No Tune experiment state in {exp} to resume from, but {len(finished)} trial(s) "
            f"finished ({', '.join(finished[:3])}{', ...' if len(finished) > 3 else ''}): "
            f"starting the sweep again there would run them twice. Start under a new --name "
            f"(finished result sets of this experiment stay readable by launch report)."
        )
    return [
        *notes,
        "no Tune experiment state saved yet (the driver was stopped before its first save) and "
        "no trial finished: the sweep starts from the beginning",
    ]


def _load_state_file(path: Path, template: str) -> None:
    """Raise ``ValueError`` unless the state file ``path`` (of kind ``template``) loads."""
    if template == EXPERIMENT:
        load_experiment_state(path)
    else:
        load_pickle(path)


def _whole_state_file(path: Path, template: str) -> None:
    """Raise ``ValueError`` unless ``path`` is a whole file of its kind, without unpickling it
    (a searcher's state may reach for its database when unpickled): the experiment state
    parses as JSON, a pickle runs to its STOP opcode."""
    try:
        data = path.read_bytes()
        if template == EXPERIMENT:
            json.loads(data)
        else:
            for _ in pickletools.genops(data):
                pass
    except (OSError, ValueError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


def _write_aside(
    pairs: list[tuple[Path, Path]],
    template_of: Mapping[Path, str],
    check: Callable[[Path, str], None] = _load_state_file,
) -> None:
    """Copy each ``(source, dest)`` to a hidden file beside ``dest``, ``check`` every copy (it
    raises ``ValueError`` for a bad one), then rename them into place; on any failure remove
    the copies and raise (``OSError`` or ``ValueError``), leaving every ``dest`` as it was."""
    staged: list[tuple[Path, Path]] = []
    try:
        for source, dest in pairs:
            tmp = dest.with_name(f".{dest.name}.tmp")
            staged.append((tmp, dest))
            shutil.copyfile(source, tmp)
            check(tmp, template_of[source])
    except (OSError, ValueError):
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, dest in staged:
        os.replace(tmp, dest)


def _session_files(d: Path, session: str) -> dict[Path, str]:
    """The state files of ``session`` in ``d`` -> their kind."""
    return {p: k for k in KINDS if (p := d / k.format(session)).is_file()}


def keep(staging: Path, exp: Path) -> str | None:
    """Copy the newest whole save in a Tune driver's staging directory ``staging`` into
    ``exp/kept-state/`` (module docstring); the session kept, or ``None`` if there was nothing
    to keep or the copy failed (a full disk: the previous kept copy stays as it was)."""
    states = saved(staging, EXPERIMENT)
    if not states:
        return None
    session = session_of(states[-1], EXPERIMENT)
    files = _session_files(staging, session)
    target = exp / KEPT_DIR
    try:
        target.mkdir(exist_ok=True)
        _write_aside([(f, target / f.name) for f in files], files, _whole_state_file)
    except (OSError, ValueError):
        return None
    return session


def _restore_kept(exp: Path, session: str) -> list[str]:
    """Copy the kept save of ``session`` back into ``exp`` (the names copied; none if no whole
    copy was kept)."""
    files = _session_files(exp / KEPT_DIR, session)
    if EXPERIMENT.format(session) not in {f.name for f in files}:
        return []
    try:
        _write_aside([(f, exp / f.name) for f in files], files)
    except ValueError:
        return []  # the kept copy does not load either
    return [f.name for f in files]


def _mark_finished(exp: Path, current: dict[str, Any]) -> list[str]:
    """Step 1's last part (module docstring): trials the saved state records as running whose
    result set is committed and whose final result Tune logged are marked terminated, with that
    result, in the experiment state file (the file as it was set aside)."""
    from analysis.resultset import commit_problem

    path: Path = current["path"]
    state = json.loads(path.read_text())
    marked: list[str] = []
    for i, (trial_json, meta_json) in enumerate(state["trial_data"]):
        trial = json.loads(trial_json)
        logdir = trial.get("relative_logdir")
        if trial.get("status") not in LIVE or not logdir or commit_problem(exp / logdir):
            continue
        last = _final_logged(exp / logdir / "result.json")
        if last is None:
            continue
        meta = json.loads(meta_json)
        meta["last_result"] = last
        trial["status"] = "TERMINATED"
        state["trial_data"][i] = [json.dumps(trial), json.dumps(meta)]
        current["trials"][i]["status"] = "TERMINATED"
        marked.append(logdir)
    if not marked:
        return []
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(state))
    set_aside(exp, [path])
    os.replace(tmp, path)
    return [
        f"{path.name} recorded {len(marked)} finished trial(s) as running ({', '.join(marked)}: "
        f"result set committed, final result logged): marked finished, not run again (the "
        f"file as it was is in {exp / CUT_DIR})"
    ]


def _final_logged(result_log: Path) -> dict[str, Any] | None:
    """The final result in a trial's ``result.json`` (Tune's log of its reports), if logged."""
    try:
        lines = result_log.read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            result = json.loads(line)
        except ValueError:
            continue  # a line cut short
        if isinstance(result, dict) and final_result(result):
            return result
    return None


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
    problem = _variants_problem(files[-1], target, current["path"], ids, live)
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


def _variants_problem(
    newest: Path, target: Path, experiment: Path, ids: list[str], live: set[str]
) -> str | None:
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
    stale = sorted((grid_live(state) or set()) - live)
    if stale:
        return (
            f"{newest.name} counts {len(stale)} finished trial(s) as running "
            f"({', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''})"
        )
    return None


def _mend_searcher(exp: Path, current: Mapping[str, Any]) -> list[str]:
    """Step 3 of the module docstring: a cut or foreign searcher state is replaced by the kept
    copy of its session when that copy is consistent, else refused by name."""
    why = _searcher_problem(exp, current)
    if why is None:
        return []
    session = current["session"]
    kept = exp / KEPT_DIR
    kinds = [t for t in (SEARCH, SEARCHER) if saved(exp, t)]
    try:
        kept_state = {
            **load_experiment_state(kept / EXPERIMENT.format(session)),
            "session": session,
        }
    except ValueError:
        kept_state = {}  # none kept, or cut
    whole = bool(kept_state) and all((kept / t.format(session)).is_file() for t in kinds)
    if whole and _searcher_problem(kept, kept_state) is None:
        moved = set_aside(exp, list(_session_files(exp, session)))
        restored = _restore_kept(exp, session)
        return [
            f"{why}: set aside with its session's files ({', '.join(moved)}) in "
            f"{exp / CUT_DIR}; replaced by the copy kept in {KEPT_DIR}/ ({', '.join(restored)}), "
            f"whose searcher and experiment states agree"
        ]
    raise StateProblem(
        f"{why}: the searcher's saved state does not match the trials Tune saved, so a "
        f"resume could run trials twice or skip some (a driver killed while Tune copied its "
        f"state), and no consistent copy of it was kept. Start again under a new --name; the "
        f"study in the database keeps every finished trial (--set study=... to continue it in "
        f"the new experiment)."
    )


def _searcher_problem(d: Path, current: Mapping[str, Any]) -> str | None:
    """Why the newest searcher state in ``d`` does not fit the experiment state ``current``
    (``None``: it fits, or there is none)."""
    session = current["session"]
    for template in (SEARCH, SEARCHER):
        files = saved(d, template)
        if not files:
            continue
        newest, target = files[-1], d / template.format(session)
        if newest != target:
            return f"{newest.name} is not of the session of {current['path'].name}"
        try:
            state = load_pickle(newest)
        except ValueError as exc:
            return f"{newest.name} is cut short ({exc})"
        created = state.get("counter") if template == SEARCH else None
        if created is not None and created != len(current["trials"]):
            return (
                f"{newest.name} has created {created} trials, {current['path'].name} "
                f"knows {len(current['trials'])}"
            )
    return None


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
