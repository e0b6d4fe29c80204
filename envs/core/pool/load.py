"""Demand against capacity, cell by cell: the load check behind a multi-cell scenario's numbers.

The compute a cell is asked for in a step is its UEs' new jobs times the mean UE job compute plus
its sensors' mean update compute (``docs/model/pool.md#scenarios``); none of it depends on the
splits or the pool (jobs are drawn from the episode seed and the UEs' positions), so the check
runs the plain simulator. :func:`cell_load` returns, per class of cells (equal MEC capacity):
the cells, their capacity, the UEs attached on average, the mean and 95th-percentile demand per
cell and step, the share of cell-steps whose demand exceeds the capacity, and the *shortfall*: the
units per cell and episode by which demand exceeds capacity, summed over the overloaded steps
(what a cell would have to borrow to keep up; compare it with the endowment). With a surge it
also gives the demand of the surge region before and after it.

Run ``python -m launch pool-load --scenario city_19 [--episodes N] [--seed S]`` (default 20
episodes from the evaluation seed 0; under a second per episode on 49 cells); it prints one line
per class. The city numbers in ``docs/model/city.md#demand-against-capacity`` come from it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.core.metrics import K_NUE, K_UE_GEN
from envs.core.params import EnvParams
from envs.core.sim import Simulator


def surge_cells(params: EnvParams) -> list[int]:
    """The cells of the (regional) surge, empty without one."""
    s = params.scenario
    if not 0 <= s.surge_step < s.episode_steps:
        return []
    x0, y0 = s.bs_positions[s.surge_cell]
    r2 = s.surge_radius_m**2
    return [
        c
        for c, (x, y) in enumerate(s.bs_positions)
        if c == s.surge_cell or (x - x0) ** 2 + (y - y0) ** 2 <= r2
    ]


def cell_load(params: EnvParams, episodes: int = 20, seed: int = 0) -> dict[str, Any]:
    """Demand against capacity per class of cells over ``episodes`` episodes (see the module)."""
    s = params.scenario
    sim = Simulator(params)
    n, t_max = s.n_cells, s.episode_steps
    demand = np.zeros((episodes, t_max, n))
    ues = np.zeros((episodes, t_max, n))
    split = np.full((n, 2), 0.5)
    sensor_demand = np.asarray(s.n_sensors, dtype=np.float64) * s.sensor_compute_mean
    sensor_demand /= s.sensor_interval
    for e in range(episodes):
        sim.reset(seed + e)
        for t in range(t_max):
            sim.step(split)
            demand[e, t] = sim.kpi[:, K_UE_GEN] * s.ue_compute_mean + sensor_demand
            ues[e, t] = sim.kpi[:, K_NUE]
    cap = np.asarray(s.mec_capacity, dtype=np.float64)
    classes = []
    for c_val in sorted(set(s.mec_capacity)):
        cells = [c for c in range(n) if s.mec_capacity[c] == c_val]
        d = demand[:, :, cells]
        short = np.maximum(d - c_val, 0.0).sum(axis=1)  # (episodes, cells)
        classes.append({
            "capacity": c_val,
            "cells": len(cells),
            "ues": float(ues[:, :, cells].mean()),
            "demand_mean": float(d.mean()),
            "demand_p95": float(np.percentile(d, 95)),
            "overloaded_pct": float(100.0 * (d > c_val).mean()),
            "shortfall": float(short.mean()),
            "shortfall_max_cell": float(short.mean(axis=0).max()),
        })  # fmt: skip
    out: dict[str, Any] = {
        "classes": classes,
        "demand_total": float(demand.sum(axis=2).mean()),
        "capacity_total": float(cap.sum()),
    }
    region = surge_cells(params)
    if region:
        k = s.surge_step
        out["surge"] = {
            "cells": region,
            "before": float(demand[:, :k, region].mean()),
            "after": float(demand[:, k:, region].mean()),
            "capacity": float(cap[region].mean()),
        }
    return out


def load_text(load: dict[str, Any]) -> str:
    """The report as text, one line per class."""
    lines = [
        f"{'capacity':>8} {'cells':>5} {'UEs':>5} {'demand':>7} {'p95':>6} {'over %':>7} "
        f"{'shortfall':>9} {'worst cell':>10}"
    ]
    for c in load["classes"]:
        lines.append(
            f"{c['capacity']:>8g} {c['cells']:>5d} {c['ues']:>5.1f} {c['demand_mean']:>7.1f} "
            f"{c['demand_p95']:>6.1f} {c['overloaded_pct']:>7.1f} {c['shortfall']:>9.0f} "
            f"{c['shortfall_max_cell']:>10.0f}"
        )
    lines.append(
        f"whole area: demand {load['demand_total']:.0f} of {load['capacity_total']:.0f} units/step"
    )
    if "surge" in load:
        sg = load["surge"]
        lines.append(
            f"surge region ({len(sg['cells'])} cells, mean capacity {sg['capacity']:.0f}): demand "
            f"per cell {sg['before']:.1f} before, {sg['after']:.1f} after"
        )
    return "\n".join(lines)
