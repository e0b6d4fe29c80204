"""Tune's saved state, cut or mixed by a driver killed while Tune copied it, is mended before a
resume or refused by name (:mod:`tune_configs.ops.tune_state`).

The states here are made by Tune's own grid search algorithm (no Ray started): a grid of three
points, one trial running at a time, saved after each trial it hands out, with the experiment
state Tune saves beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tune_configs.ops import tune_state
from tune_configs.ops.ray_internals import grid_handed_out
from tune_configs.ops.tune_state import CUT_DIR, StateProblem, mend

pytestmark = pytest.mark.ray  # imports Tune (no Ray started)
ray_tune = pytest.importorskip("ray.tune")


def _trainable(config: dict[str, Any]) -> None:  # never run
    pass


class Run:
    """A grid search of 3 points, one trial live at a time, and Tune's saves of it."""

    def __init__(self, exp: Path) -> None:
        from ray.tune.experiment import Experiment
        from ray.tune.search.basic_variant import BasicVariantGenerator

        self.exp = exp
        exp.mkdir(parents=True, exist_ok=True)
        spec = Experiment(
            name="x", run=_trainable, config={"a": ray_tune.grid_search([1, 2, 3])},
            storage_path=str(exp.parent),
        )  # fmt: skip
        self.generator = BasicVariantGenerator(max_concurrent=1)
        self.generator.add_configurations([spec])
        self.trials: list[Any] = []

    def hand_out(self) -> Any:
        """Finish the running trial (if any) and hand out the next one."""
        if self.trials:
            self.trials[-1].status = "TERMINATED"
            self.generator.on_trial_complete(self.trials[-1].trial_id)
        trial = self.generator.next_trial()
        assert trial is not None
        trial.status = "RUNNING"
        self.trials.append(trial)
        return trial

    def save(self, session: str, *, search: bool = True, experiment: bool = True) -> None:
        """What Tune's driver writes for a save of ``session`` (both files, or one of them)."""
        from ray.tune.utils.serialization import TuneFunctionEncoder

        if experiment:
            for t in self.trials:
                t.invalidate_json_state()
            # runner_data holds objects JSON cannot (Tune embeds them pickled), as a real save
            state = {"trial_data": [list(t.get_json_state()) for t in self.trials],
                     "runner_data": {"_stopper": _trainable}, "stats": {}}  # fmt: skip
            path = self.exp / tune_state.EXPERIMENT.format(session)
            path.write_text(json.dumps(state, cls=TuneFunctionEncoder))
        if search:
            self.generator.save_to_dir(str(self.exp), session)

    def ids(self) -> list[str]:
        return [t.trial_id for t in self.trials]


def cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def variants(exp: Path, session: str) -> dict[str, Any]:
    return tune_state.load_pickle(exp / tune_state.VARIANTS.format(session))


def resumed_generator(exp: Path, session: str) -> Any:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    generator = BasicVariantGenerator()
    generator.restore_from_dir(str(exp))
    assert generator.get_state()["_uuid_prefix"] == variants(exp, session)["_uuid_prefix"]
    return generator


def test_the_state_file_names_are_tunes() -> None:
    assert tune_state.problems() == []


def test_a_consistent_state_is_left_alone(tmp_path: Path) -> None:
    run = Run(tmp_path / "exp")
    run.hand_out()
    run.save("S1")
    run.hand_out()
    run.save("S1")
    before = {p.name: p.read_bytes() for p in run.exp.iterdir()}
    assert mend(run.exp) == []
    assert {p.name: p.read_bytes() for p in run.exp.iterdir()} == before


def test_a_cut_search_state_is_brought_forward_from_an_earlier_session(tmp_path: Path) -> None:
    run = Run(tmp_path / "exp")
    first = run.hand_out()
    run.save("S1")  # the first driver: 1 trial handed out
    second = run.hand_out()
    run.save("S2")  # the resumed driver: 2 trials, its search state then cut by the kill
    cut(run.exp / tune_state.VARIANTS.format("S2"))
    notes = mend(run.exp)
    assert len(notes) == 1 and "cut short" in notes[0] and "brought forward" in notes[0], notes
    assert (run.exp / CUT_DIR / tune_state.VARIANTS.format("S2")).is_file()
    assert grid_handed_out(variants(run.exp, "S2")) == [first.trial_id, second.trial_id]
    # What Tune's resume then does: the next trial is the third grid point, never one again.
    generator = resumed_generator(run.exp, "S2")
    assert generator.next_trial() is None  # trial 2 still runs (one at a time)
    generator.on_trial_complete(second.trial_id)
    third = generator.next_trial()
    assert third.trial_id not in run.ids() and third.experiment_tag.startswith("2_a=3")
    assert mend(run.exp) == []  # mended for good


def test_a_stale_search_state_of_the_same_session_is_brought_forward(tmp_path: Path) -> None:
    run = Run(tmp_path / "exp")
    run.hand_out()
    run.save("S1")
    run.hand_out()
    run.save("S1", search=False)  # the experiment state copied, the search state not yet
    (note,) = mend(run.exp)
    assert "has handed out 1 trials, its experiment state knows 2" in note, note
    assert grid_handed_out(variants(run.exp, "S1")) == run.ids()
    assert variants(run.exp, "S1")["_live_trials"] == {run.ids()[1]}


def test_a_search_state_ahead_of_the_experiment_state_is_not_used(tmp_path: Path) -> None:
    run = Run(tmp_path / "exp")
    run.hand_out()
    run.save("S1")
    run.hand_out()
    run.save("S2")
    run.hand_out()
    run.save("S2", experiment=False)  # handed out a third trial Tune never saved
    (note,) = mend(run.exp)
    assert "has handed out 3 trials, its experiment state knows 2" in note, note
    assert "basic-variant-state-S1.json brought forward" in note, note
    assert grid_handed_out(variants(run.exp, "S2")) == run.ids()[:2]


def test_nothing_to_bring_forward_is_refused_by_name_and_nothing_moved(tmp_path: Path) -> None:
    run = Run(tmp_path / "exp")
    run.hand_out()
    run.save("S1")
    cut(run.exp / tune_state.VARIANTS.format("S1"))
    before = sorted(p.name for p in run.exp.iterdir())
    with pytest.raises(StateProblem, match=r"basic-variant-state-S1.json is cut short.*--name"):
        mend(run.exp)
    assert sorted(p.name for p in run.exp.iterdir()) == before


def test_a_trial_the_grid_would_not_hand_out_is_not_made_up(tmp_path: Path) -> None:
    run = Run(tmp_path / "exp")
    run.hand_out()
    run.save("S1")
    run.hand_out()
    run.save("S2", search=False)
    # Tamper: the trial ids of S2's experiment state continue S1's, but its second grid point
    # is recorded with another tag than the grid gives.
    path = run.exp / tune_state.EXPERIMENT.format("S2")
    state = json.loads(path.read_text())
    trial = json.loads(state["trial_data"][1][0])
    trial["experiment_tag"] = "1_a=99"
    state["trial_data"][1][0] = json.dumps(trial)
    path.write_text(json.dumps(state))
    with pytest.raises(StateProblem, match="no saved search state"):
        mend(run.exp)


def test_a_cut_experiment_state_falls_back_to_the_previous_save(tmp_path: Path) -> None:
    run = Run(tmp_path / "exp")
    run.hand_out()
    run.save("S1")
    run.hand_out()
    run.save("S2")
    cut(run.exp / tune_state.EXPERIMENT.format("S2"))
    (note,) = mend(run.exp)
    assert "experiment_state-S2.json is cut short" in note and "from experiment_state-S1" in note
    moved = sorted(p.name for p in (run.exp / CUT_DIR).iterdir())
    assert moved == [tune_state.VARIANTS.format("S2"), tune_state.EXPERIMENT.format("S2")]
    assert grid_handed_out(variants(run.exp, "S1")) == run.ids()[:1]


@pytest.mark.parametrize("finished", [False, True])
def test_no_experiment_state_left_starts_over_only_if_no_trial_finished(
    tmp_path: Path, finished: bool
) -> None:
    run = Run(tmp_path / "exp")
    (run.exp / "tuner.pkl").write_bytes(b"tuner")
    trial = run.hand_out()
    run.save("S1")
    cut(run.exp / tune_state.EXPERIMENT.format("S1"))
    if finished:
        (run.exp / trial.trial_id).mkdir()
        (run.exp / trial.trial_id / "summary.json").write_text("[]")
        with pytest.raises(StateProblem, match=rf"1 trial\(s\) finished \({trial.trial_id}\)"):
            mend(run.exp)
    else:
        cut_note, start_note = mend(run.exp)
        assert "no earlier saved state" in cut_note
        assert "the sweep starts from the beginning" in start_note


def test_cut_callback_states_are_set_aside(tmp_path: Path) -> None:
    run = Run(tmp_path / "exp")
    run.hand_out()
    run.save("S1")
    (run.exp / tune_state.CALLBACKS.format("S1")).write_bytes(b"\x80\x05\x95")
    (note,) = mend(run.exp)
    assert "callback-states-S1.pkl is cut short" in note
    assert not (run.exp / tune_state.CALLBACKS.format("S1")).exists()


@pytest.mark.parametrize("damage", ["cut", "counter", "foreign"])
def test_a_bad_searcher_state_is_refused_by_name(tmp_path: Path, damage: str) -> None:
    import ray.cloudpickle as cloudpickle

    run = Run(tmp_path / "exp")
    run.save("S1", search=False)  # no trials yet
    (run.exp / tune_state.VARIANTS.format("S1")).unlink(missing_ok=True)
    session = "S0" if damage == "foreign" else "S1"
    path = run.exp / tune_state.SEARCH.format(session)
    counter = 3 if damage == "counter" else 0
    path.write_bytes(cloudpickle.dumps({"counter": counter, "total_samples": 4}))
    if damage == "cut":
        cut(path)
    why = rf"{path.name} (is cut short|has created 3 trials|is not)"
    with pytest.raises(StateProblem, match=why):
        mend(run.exp)


# --- the kept copy of a save, and trials that finished after a save ---------------------------
def _finish_files(run: Run, trial: Any, *, final: bool = True) -> Path:
    """What a finished trial leaves in its directory: its committed result set and Tune's log of
    its reports (with the final one, or cut before it)."""
    from analysis.resultset import write_result_set

    trial.relative_logdir = trial.trial_id
    d = run.exp / trial.trial_id
    write_result_set(
        d, {"kind": "static"}, [{"policy": "p", "kind": "static", "seed": 0, "x": 1.0}]
    )
    lines = [{"training_iteration": 1, "best_return": 1.0}]
    if final:
        lines.append({"training_iteration": 2, "eval/served_pct": 50.0})
    (d / "result.json").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return d


def _statuses(exp: Path, session: str) -> dict[str, str]:
    state = tune_state.load_experiment_state(exp / tune_state.EXPERIMENT.format(session))
    return {t["trial_id"]: t["status"] for t in state["trials"]}


def test_a_cut_experiment_state_is_replaced_by_the_copy_kept_of_its_session(
    tmp_path: Path,
) -> None:
    run = Run(tmp_path / "exp")
    (run.exp / "tuner.pkl").write_bytes(b"tuner")
    run.hand_out()
    run.save("S1")
    assert tune_state.keep(run.exp, run.exp) == "S1"  # the driver's staging dir: here exp itself
    kept = {p.name: p.read_bytes() for p in (run.exp / tune_state.KEPT_DIR).iterdir()}
    assert sorted(kept) == [tune_state.VARIANTS.format("S1"), tune_state.EXPERIMENT.format("S1")]
    cut(run.exp / tune_state.EXPERIMENT.format("S1"))  # Tune's copy into a full disk
    trial = run.trials[0]
    (run.exp / trial.trial_id).mkdir()
    (run.exp / trial.trial_id / "summary.json").write_text("[]")  # without the copy: refused
    (note,) = mend(run.exp)
    assert "experiment_state-S1.json is cut short" in note and "replaced by the copy kept" in note
    for name, data in kept.items():
        assert (run.exp / name).read_bytes() == data
    assert sorted(p.name for p in (run.exp / CUT_DIR).iterdir()) == sorted(kept)
    assert mend(run.exp) == []  # now consistent


def test_a_copy_that_does_not_load_never_replaces_the_kept_one(tmp_path: Path) -> None:
    run = Run(tmp_path / "exp")
    stage = tmp_path / "stage"
    staged = Run(stage)
    staged.generator, staged.trials = run.generator, run.trials
    run.hand_out()
    staged.save("S1")
    assert tune_state.keep(stage, run.exp) == "S1"
    kept = {p.name: p.read_bytes() for p in (run.exp / tune_state.KEPT_DIR).iterdir()}
    run.hand_out()
    staged.save("S1")
    cut(stage / tune_state.VARIANTS.format("S1"))
    assert tune_state.keep(stage, run.exp) is None
    assert {p.name: p.read_bytes() for p in (run.exp / tune_state.KEPT_DIR).iterdir()} == kept
    cut(run.exp / tune_state.KEPT_DIR / tune_state.EXPERIMENT.format("S1"))
    run.save("S1")
    cut(run.exp / tune_state.EXPERIMENT.format("S1"))  # and a kept copy that does not load
    notes = mend(run.exp)
    assert "no earlier saved state" in notes[0], notes


@pytest.mark.parametrize("final", [True, False])
def test_a_trial_that_finished_after_the_save_is_not_run_again(tmp_path: Path, final: bool) -> None:
    run = Run(tmp_path / "exp")
    first = run.hand_out()
    _finish_files(run, first, final=final)
    run.save("S1")  # the save recorded the first trial running; it finished since
    notes = mend(run.exp)
    if not final:  # no final result logged: Tune runs it again, as before
        assert notes == [] and _statuses(run.exp, "S1")[first.trial_id] == "RUNNING"
        return
    assert len(notes) == 2, notes
    assert f"1 finished trial(s) as running ({first.trial_id}" in notes[0]
    assert "counts 1 finished trial(s) as running" in notes[1]
    assert _statuses(run.exp, "S1") == {first.trial_id: "TERMINATED"}
    state = json.loads((run.exp / tune_state.EXPERIMENT.format("S1")).read_text())
    assert json.loads(state["trial_data"][0][1])["last_result"]["eval/served_pct"] == 50.0
    assert (run.exp / CUT_DIR / tune_state.EXPERIMENT.format("S1")).is_file()  # as it was
    # the grid no longer counts it running: with one trial at a time it hands out the next
    generator = resumed_generator(run.exp, "S1")
    assert generator.get_state()["_live_trials"] == set()
    nxt = generator.next_trial()
    assert nxt is not None and nxt.trial_id not in run.ids()
    assert mend(run.exp) == []


@pytest.mark.parametrize("damage", ["cut", "counter", "foreign"])
def test_a_bad_searcher_state_is_replaced_by_a_consistent_kept_copy(
    tmp_path: Path, damage: str
) -> None:
    import ray.cloudpickle as cloudpickle

    run = Run(tmp_path / "exp")
    run.save("S1", search=False)  # no trials yet
    search = run.exp / tune_state.SEARCH.format("S1")
    search.write_bytes(cloudpickle.dumps({"counter": 0, "total_samples": 4}))
    assert tune_state.keep(run.exp, run.exp) == "S1"
    kept = {p.name: p.read_bytes() for p in (run.exp / tune_state.KEPT_DIR).iterdir()}
    if damage == "cut":
        cut(search)
    elif damage == "counter":
        search.write_bytes(cloudpickle.dumps({"counter": 3, "total_samples": 4}))
    else:  # the session's own searcher state never arrived; an older session's is newest
        search.unlink()
        (run.exp / tune_state.SEARCH.format("S0")).write_bytes(
            cloudpickle.dumps({"counter": 2, "total_samples": 4})
        )
    (note,) = mend(run.exp)
    assert "replaced by the copy kept" in note, note
    for name, data in kept.items():
        assert (run.exp / name).read_bytes() == data
    assert mend(run.exp) == []
    # a kept copy that disagrees with itself is no way out: refused by name, as without one
    (run.exp / tune_state.KEPT_DIR / search.name).write_bytes(
        cloudpickle.dumps({"counter": 5, "total_samples": 4})
    )
    cut(search)
    with pytest.raises(StateProblem, match="no consistent copy of it was kept"):
        mend(run.exp)
