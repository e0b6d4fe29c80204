"""CIVIC-style episode metrics of the multi-cell credit-pool study, per cell and overall.

Source: ``docs/model/pool.md#metrics``; the definitions are ours (CIVIC's
paper body is not available). All counts are UE jobs of one episode; ``tau`` is
``delay_threshold``, ``sigma`` is ``sync_threshold`` (default 10 steps) of the reward parameters.

Overall (system) metrics:

* ``completion_pct`` = 100 x completed UE jobs / generated UE jobs;
* ``fulfillment_pct`` = 100 x UE jobs completed with AoRI <= tau AND AoSI <= sigma / generated;
* ``served_clients`` = number of UEs whose own fulfillment rate (fulfilled / generated jobs of that
  UE) is >= ``served_threshold`` (default 0.5); UEs that generated nothing are not served;
  ``served_clients_pct`` = 100 x served_clients / number of UEs;
* ``fairness`` = Jain's index over the cells' fulfillment rates ``x_c``:
  ``(sum x)^2 / (n sum x^2)`` over the cells with at least one attributed job (None if every
  such rate is 0); 1 means equal rates, 1/n one cell gets everything;
* ``operational_cost`` = ``compute_cost`` x MEC compute units used + ``backhaul_cost`` x units
  moved over the backhaul (units lent through the pool); ``cost_per_fulfilled`` divides it by the
  fulfilled jobs;
* pool flows: ``units_lent`` (= backhaul units), ``units_borrowed`` (equal to it),
  ``credits_traded`` (credits paid by borrowers = earned by lenders);
* also ``ue_generated``, ``ue_completed``, ``ue_fulfilled``, ``left_queued``, ``sync_delay``
  (mean AoSI), ``e2e_delay`` (mean AoRI) of the completed jobs, ``episode_return``.

Per cell ``c`` (list ``cells``): a UE job is ATTRIBUTED to the cell that completed it, or, if it is
still queued at the horizon, to the cell holding it (its BS compute queue, or the cell its UE is
attached to for jobs still in the UE's uplink queue). Jobs move between cells only with their UE
before they reach a BS (handover), so every generated job is attributed to exactly one cell and the
cells' attributed jobs sum to the generated ones. Then

* ``completion_pct`` = 100 x completed at c / attributed to c; ``fulfillment_pct`` likewise;
* ``served_clients`` = served UEs whose home cell is c (the cell the UE was attached to in most
  steps; ties: lowest cell id), ``clients`` = UEs whose home cell is c;
* ``operational_cost`` = compute_cost x units used at c + backhaul_cost x units c borrowed (the
  borrower pays the backhaul);
* pool flows of c: ``units_offered``, ``units_asked`` (after the credit cut), ``units_lent``,
  ``units_borrowed``, ``credits_earned``, ``credits_spent``, ``balance_final``; ``capacity_mean``
  is the mean MEC capacity in effect per step (base - lent + borrowed).

Phases (scenarios with a surge, ``0 < surge_step < episode_steps``): ``phases`` holds ``before``
(steps < surge_step) and ``after`` (steps >= surge_step) with the same overall and per-cell rates,
but measured as flows within the phase: jobs completed (fulfilled) in the phase / jobs generated in
the phase, per cell by the cell where they were generated or completed (a per-cell rate can then
exceed 100 % when a backlog drains or jobs follow their UE to another cell).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.core.metrics import (
    K_AORI,
    K_AOSI,
    K_CAPACITY,
    K_CU_USED,
    K_FULFIL,
    K_PEN,
    K_Q_UE,
    K_SYNC_R,
    K_UE_DONE,
    K_UE_GEN,
    K_UP_UE,
    U_FULFIL,
    U_GEN,
)
from envs.core.metrics import LABELS as MODEL_LABELS
from envs.core.pool.clearing import (
    A_ASKED,
    A_BORROWED,
    A_EARNED,
    A_LENT,
    A_OFFERED,
    A_SPENT,
    PoolParams,
)

# Every overall metric: name -> human label with unit (the one list of the pool's metric names;
# callbacks, trials, the comparison, collection and tables derive theirs from it and the subsets
# below). A metric the single-cell model has too means the same and carries its label.
LABELS: dict[str, str] = {
    "completion_pct": "UE jobs completed [%]",
    "fulfillment_pct": "UE jobs fulfilled (on time and in sync) [%]",
    "served_clients": "served clients [UEs]",
    "served_clients_pct": "served clients [%]",
    "fairness": "fairness (Jain's index over cells)",
    "operational_cost": "operational cost",
    "cost_per_fulfilled": "cost per fulfilled job",
    "compute_used": MODEL_LABELS["compute_used"],
    "backhaul_units": "backhaul units moved",
    "units_lent": "units lent through the pool",
    "units_borrowed": "units borrowed through the pool",
    "credits_traded": "credits traded",
    "ue_generated": MODEL_LABELS["ue_generated"],
    "ue_completed": MODEL_LABELS["ue_completed"],
    "ue_fulfilled": "UE jobs fulfilled",
    "left_queued": MODEL_LABELS["left_queued"],
    "sync_delay": MODEL_LABELS["sync_delay"],
    "e2e_delay": MODEL_LABELS["e2e_delay"],
    "episode_return": MODEL_LABELS["episode_return"],
}
OVERALL_KEYS: tuple[str, ...] = tuple(LABELS)

CELL_KEYS: tuple[str, ...] = (
    "completion_pct", "fulfillment_pct", "served_clients", "clients", "served_clients_pct",
    "operational_cost", "compute_used", "capacity_mean", "units_offered", "units_asked",
    "units_lent", "units_borrowed", "credits_earned", "credits_spent", "balance_final",
    "ue_attributed", "ue_completed", "ue_fulfilled", "sync_delay", "e2e_delay", "episode_return",
)  # fmt: skip

PHASE_KEYS: tuple[str, ...] = (
    "completion_pct", "fulfillment_pct", "served_clients", "served_clients_pct", "fairness",
    "operational_cost", "units_lent", "ue_generated", "ue_completed", "ue_fulfilled",
)  # fmt: skip

# the metrics of the CIVIC comparison, with the direction that is better
HEADLINE: tuple[tuple[str, str], ...] = (
    ("completion_pct", "max"),
    ("fulfillment_pct", "max"),
    ("served_clients", "max"),
    ("fairness", "max"),
    ("operational_cost", "min"),
)
HEADLINE_KEYS: tuple[str, ...] = tuple(k for k, _ in HEADLINE)
# Reported as ``eval/<name>`` by a trial that evaluates a pool policy.
EVAL_KEYS: tuple[str, ...] = (
    *HEADLINE_KEYS, "units_borrowed", "backhaul_units", "episode_return",
)  # fmt: skip
# Logged per training episode (TensorBoard ``env_runners/civic/...``): overall, per cell, phase.
TRAINING_KEYS: tuple[str, ...] = (
    "completion_pct", "fulfillment_pct", "served_clients", "served_clients_pct", "fairness",
    "operational_cost", "backhaul_units", "credits_traded", "episode_return", "left_queued",
)  # fmt: skip
CELL_TRAINING_KEYS: tuple[str, ...] = (
    "completion_pct", "fulfillment_pct", "units_lent", "units_borrowed", "credits_earned",
    "credits_spent", "balance_final", "capacity_mean",
)  # fmt: skip
PHASE_TRAINING_KEYS: tuple[str, ...] = (
    "completion_pct", "fulfillment_pct", "fairness", "units_lent",
)  # fmt: skip
# The cooperative-vs-non-cooperative comparison (``launch pool-compare``): overall, cell, phase.
COMPARED_KEYS: tuple[str, ...] = (
    "completion_pct", "fulfillment_pct", "served_clients", "served_clients_pct", "fairness",
    "operational_cost", "cost_per_fulfilled", "compute_used", "backhaul_units", "credits_traded",
    "sync_delay", "e2e_delay", "episode_return", "left_queued",
)  # fmt: skip
CELL_COMPARED_KEYS: tuple[str, ...] = (
    "completion_pct", "fulfillment_pct", "served_clients", "units_lent", "units_borrowed",
    "credits_earned", "credits_spent",
)  # fmt: skip
PHASE_COMPARED_KEYS: tuple[str, ...] = (
    "completion_pct", "fulfillment_pct", "served_clients", "fairness", "operational_cost",
)  # fmt: skip


# CIVIC's reported gains over non-cooperative providers (%, from its public summary), per metric:
# (low, high), low None meaning "up to high". The one copy; tables and the comparison derive theirs.
CIVIC_REPORTED_GAINS: dict[str, tuple[float | None, float]] = {
    "completion_pct": (12.0, 36.0),
    "fulfillment_pct": (23.0, 70.0),
    "served_clients": (20.0, 60.0),
    "fairness": (None, 51.0),
}


def civic_range_text(key: str) -> str:
    """CIVIC's reported gain of a metric as text (``+23-70 %``, ``up to +51 %``; ``""`` if none)."""
    rng = CIVIC_REPORTED_GAINS.get(key)
    if rng is None:
        return ""
    lo, hi = rng
    return f"up to +{hi:g} %" if lo is None else f"+{lo:g}-{hi:g} %"


def _pct(num: float, den: float) -> float | None:
    return 100.0 * num / den if den > 0 else None


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def jain(values: list[float | None] | NDArray[np.float64]) -> float | None:
    """Jain's fairness index ``(sum x)^2 / (n sum x^2)`` over the defined (non-None) values."""
    x = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return None
    sq = float((x * x).sum())
    if sq <= 0.0:
        return None
    return float(x.sum() ** 2 / (x.size * sq))


def home_cells(attach: NDArray[np.float64]) -> NDArray[np.int64]:
    """Per UE the cell it was attached to in most steps (ties: lowest cell id)."""
    out: NDArray[np.int64] = np.argmax(attach, axis=1).astype(np.int64)
    return out


def served_mask(ue_acc: NDArray[np.float64], threshold: float) -> NDArray[np.bool_]:
    """UEs whose own fulfillment rate is >= ``threshold`` (UEs without jobs are not served)."""
    gen = ue_acc[:, U_GEN]
    ful = ue_acc[:, U_FULFIL]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(gen > 0, ful / np.maximum(gen, 1.0), -1.0)
    return (gen > 0) & (rate >= threshold - 1e-12)


def episode_metrics(
    acc: NDArray[np.float64],
    last: NDArray[np.float64],
    ue_acc: NDArray[np.float64],
    attach: NDArray[np.float64],
    pool_acc: NDArray[np.float64],
    balance: NDArray[np.float64],
    pool: PoolParams,
    steps: int,
) -> dict[str, Any]:
    """Overall and per-cell metrics of one episode (definitions in the module docstring).

    ``acc`` ``(C, N_KPI)`` KPI sums, ``last`` ``(C, N_KPI)`` the last step's KPIs, ``ue_acc``
    ``(U, N_UE_ACC)``, ``attach`` ``(U, C)`` steps each UE spent attached to each cell,
    ``pool_acc`` ``(C, N_POOL_ACC)`` pool flows, ``balance`` ``(C,)`` final credit balances.
    """
    n_c = acc.shape[0]
    steps = max(int(steps), 1)
    done = acc[:, K_UE_DONE]
    ful = acc[:, K_FULFIL]
    left = last[:, K_Q_UE] + last[:, K_UP_UE]
    attributed = done + left
    used = acc[:, K_CU_USED]
    lent = pool_acc[:, A_LENT]
    borrowed = pool_acc[:, A_BORROWED]
    served = served_mask(ue_acc, pool.served_threshold)
    home = home_cells(attach)
    cell_cost = pool.compute_cost * used + pool.backhaul_cost * borrowed

    cells: list[dict[str, Any]] = []
    for c in range(n_c):
        mine = home == c
        n_clients = int(mine.sum())
        n_served = int((served & mine).sum())
        cells.append({
            "completion_pct": _pct(done[c], attributed[c]),
            "fulfillment_pct": _pct(ful[c], attributed[c]),
            "served_clients": n_served,
            "clients": n_clients,
            "served_clients_pct": _pct(n_served, n_clients),
            "operational_cost": float(cell_cost[c]),
            "compute_used": float(used[c]),
            "capacity_mean": float(acc[c, K_CAPACITY] / steps),
            "units_offered": float(pool_acc[c, A_OFFERED]),
            "units_asked": float(pool_acc[c, A_ASKED]),
            "units_lent": float(lent[c]),
            "units_borrowed": float(borrowed[c]),
            "credits_earned": float(pool_acc[c, A_EARNED]),
            "credits_spent": float(pool_acc[c, A_SPENT]),
            "balance_final": float(balance[c]),
            "ue_attributed": float(attributed[c]),
            "ue_completed": float(done[c]),
            "ue_fulfilled": float(ful[c]),
            "sync_delay": _ratio(acc[c, K_AOSI], done[c]),
            "e2e_delay": _ratio(acc[c, K_AORI], done[c]),
            "episode_return": float(acc[c, K_SYNC_R] + acc[c, K_PEN]),
        })  # fmt: skip

    gen = float(acc[:, K_UE_GEN].sum())
    tot_done = float(done.sum())
    tot_ful = float(ful.sum())
    cost = float(cell_cost.sum())
    n_served = int(served.sum())
    overall: dict[str, Any] = {
        "completion_pct": _pct(tot_done, gen),
        "fulfillment_pct": _pct(tot_ful, gen),
        "served_clients": n_served,
        "served_clients_pct": _pct(n_served, ue_acc.shape[0]),
        "fairness": jain([cell["fulfillment_pct"] for cell in cells]),
        "operational_cost": cost,
        "cost_per_fulfilled": _ratio(cost, tot_ful),
        "compute_used": float(used.sum()),
        "backhaul_units": float(lent.sum()),
        "units_lent": float(lent.sum()),
        "units_borrowed": float(borrowed.sum()),
        "credits_traded": float(pool_acc[:, A_SPENT].sum()),
        "ue_generated": gen,
        "ue_completed": tot_done,
        "ue_fulfilled": tot_ful,
        "left_queued": float(left.sum()),
        "sync_delay": _ratio(float(acc[:, K_AOSI].sum()), tot_done),
        "e2e_delay": _ratio(float(acc[:, K_AORI].sum()), tot_done),
        "episode_return": float(acc[:, K_SYNC_R].sum() + acc[:, K_PEN].sum()),
    }
    return {**overall, "steps": steps, "cells": cells}


def phase_metrics(
    acc: NDArray[np.float64],
    ue_acc: NDArray[np.float64],
    pool_acc: NDArray[np.float64],
    pool: PoolParams,
) -> dict[str, Any]:
    """Flow metrics of one phase from the KPI, per-UE and pool sums over that phase only."""
    gen_c = acc[:, K_UE_GEN]
    done_c = acc[:, K_UE_DONE]
    ful_c = acc[:, K_FULFIL]
    lent = pool_acc[:, A_LENT]
    cost_c = pool.compute_cost * acc[:, K_CU_USED] + pool.backhaul_cost * pool_acc[:, A_BORROWED]
    served = served_mask(ue_acc, pool.served_threshold)
    cells = [
        {"completion_pct": _pct(done_c[c], gen_c[c]), "fulfillment_pct": _pct(ful_c[c], gen_c[c]),
         "operational_cost": float(cost_c[c]), "units_lent": float(lent[c]),
         "units_borrowed": float(pool_acc[c, A_BORROWED]), "ue_generated": float(gen_c[c]),
         "ue_completed": float(done_c[c]), "ue_fulfilled": float(ful_c[c])}
        for c in range(acc.shape[0])
    ]  # fmt: skip
    gen = float(gen_c.sum())
    return {
        "completion_pct": _pct(float(done_c.sum()), gen),
        "fulfillment_pct": _pct(float(ful_c.sum()), gen),
        "served_clients": int(served.sum()),
        "served_clients_pct": _pct(int(served.sum()), ue_acc.shape[0]),
        "fairness": jain([cell["fulfillment_pct"] for cell in cells]),
        "operational_cost": float(cost_c.sum()),
        "units_lent": float(lent.sum()),
        "ue_generated": gen,
        "ue_completed": float(done_c.sum()),
        "ue_fulfilled": float(ful_c.sum()),
        "cells": cells,
    }


def flat_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """One flat dict (a CSV row): overall keys, ``cell{c}_{key}``, ``{phase}_{key}``."""
    row: dict[str, Any] = {k: metrics.get(k) for k in OVERALL_KEYS}
    for c, cell in enumerate(metrics.get("cells", [])):
        for k in CELL_KEYS:
            row[f"cell{c}_{k}"] = cell.get(k)
    for phase, pm in metrics.get("phases", {}).items():
        for k in PHASE_KEYS:
            row[f"{phase}_{k}"] = pm.get(k)
        for c, cell in enumerate(pm.get("cells", [])):
            for k in ("completion_pct", "fulfillment_pct"):
                row[f"{phase}_cell{c}_{k}"] = cell.get(k)
    return row
