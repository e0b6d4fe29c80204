"""Replays act like evaluation: controller specs, common episodes, shipped policies (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tune_configs.replay import POLICY, RULE, SPLIT, SpecError, parse_spec, run_replay

ADAPTIVE = "models/paper/adaptive"
POOL = "models/pool/three_cell_hetero"


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[2])


def test_specs_name_each_controller_one_way() -> None:
    assert parse_spec("split:0.3,0.4").splits == ((0.3, 0.4),)
    assert parse_spec("split:0.3,0.4;0.5,0.5").kind == SPLIT
    q = parse_spec("rule:queue_aware")
    assert (q.kind, q.rule, q.pool) == (RULE, "queue_aware", False)
    g = parse_spec("rule:greedy:0.6,0.5;0.4,0.4;0.5,0.5")
    assert g.pool and g.splits[0] == (0.6, 0.5)
    single, pool = parse_spec(ADAPTIVE), parse_spec(POOL)
    assert (single.kind, single.pool, pool.kind, pool.pool) == (POLICY, False, POLICY, True)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("split:0.3", "is not W_B,W_C"),
        ("split:0.3,1.4", "shares in \\[0, 1\\]"),
        ("rule:smart", "unknown rule 'smart'"),
        ("rule:queue_aware:0.1,0.2", "takes no parameters"),
        ("models/paper/nothing", "is not a directory; a controller is"),
        ("envs", "controller 'envs' holds no policy"),
    ],
)
def test_bad_specs_say_what_a_controller_is(text: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        spec = parse_spec(text)
        run_replay([spec], 0, frames=False)


def test_a_policy_replays_exactly_its_evaluation_episode() -> None:
    from tune_configs.policies.single import evaluate_policy, load_policy

    replay = run_replay(
        [parse_spec(ADAPTIVE), parse_spec("split:0.3,0.3"), parse_spec("rule:queue_aware")], 4,
        preset="paper_dynamic", frames=False,
    )  # fmt: skip
    assert not replay.pool and replay.preset == "paper_dynamic" and "R0:" in replay.regimes
    policy = load_policy(ADAPTIVE, preset="paper_dynamic")
    (row,) = evaluate_policy(policy, episodes=1, seed=4)
    got = replay.traces[0].summary
    for key in ("sync_delay", "e2e_delay", "served_pct", "episode_return"):
        assert got[key] == pytest.approx(row[key], rel=1e-12), key
    regimes = [tr.regime for tr in replay.traces]
    assert regimes[0] == regimes[1] == regimes[2]  # one episode for all
    split = replay.traces[1]
    assert all(k[0, 14] == 0.3 and k[0, 15] == 0.3 for k in split.kpi)  # applied w_b, w_c


def test_a_pool_policy_and_the_greedy_rule_on_the_credit_pool() -> None:
    from envs.core.pool.rules import evaluate_controller
    from tune_configs.controllers import load_any_pool_controller

    replay = run_replay([parse_spec(POOL), parse_spec("rule:greedy")], 7000, frames=True)
    assert replay.pool and replay.preset == "three_cell_hetero"
    assert replay.notes == ["rule:greedy: splits [[0.6, 0.5], [0.4, 0.4], [0.5, 0.5]]"]
    policy = load_any_pool_controller(POOL)
    trace = replay.traces[0]
    from envs.pool.env import MetaLorePoolEnv

    env = MetaLorePoolEnv(preset="three_cell_hetero", endowment=1000.0, obs_mode="log1p",
                          reward="fulfilled")  # fmt: skip
    (m,) = evaluate_controller(env.params, env.pool_params, policy, 1, 7000)
    assert trace.summary["fulfillment_pct"] == pytest.approx(m["fulfillment_pct"])
    assert len(trace.frames) == 101 and len(trace.pool_cells) == 100


def test_controllers_that_cannot_act_together_are_refused() -> None:
    with pytest.raises(SpecError, match="single-cell policy; it cannot act on the credit pool"):
        run_replay([parse_spec(ADAPTIVE), parse_spec("rule:greedy")], 0, frames=False)
    with pytest.raises(ValueError, match="the pool needs at least 2 cells"):
        run_replay([parse_spec("rule:greedy:0.5,0.5")], 0, preset="paper", frames=False)
    with pytest.raises(SpecError, match="acts on one cell's queues"):
        run_replay([parse_spec(POOL), parse_spec("rule:queue_aware")], 0, frames=False)
    with pytest.raises(SpecError, match="named twice"):
        run_replay([parse_spec("split:0.3,0.3"), parse_spec("split:0.3,0.3")], 0, frames=False)
    with pytest.raises(SpecError, match="2 splits for 3 cells"):
        run_replay([parse_spec("split:0.3,0.3;0.4,0.4")], 0, preset="three_cell", frames=False)
