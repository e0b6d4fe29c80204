"""Multi-cell scenarios of the credit-pool study (``docs/model/pool.md#scenarios``).

:func:`multicell_presets` builds the presets below from ``three_cell``; :mod:`envs.core.presets`
lists them in its ``PRESETS`` explicitly (no import side effect). ``three_cell`` itself is
defined by the core presets: BSs at (90, 50), (150, 120), (30, 120) in the 200 x 200 m area,
15 UEs, 20 sensors (7, 7, 6), every MEC 100 units and every BS 100 MHz. It is lightly loaded
(about 66 of 100 units per cell per step), so sharing changes little there; the scenarios below
create the imbalance the pool is for.

* ``three_cell_hetero``: ``three_cell`` with unequal load: the MEC of cell 0 has half the capacity
  (50 units) and 40 % of the UEs (6 of 15) roam only the 100 x 100 m square around BS 0 (the core's
  UE hotspot). Cell 0 then needs about 80 units per step and has 50, while cells 1 and 2 need about
  60 of their 100; without sharing cell 0's backlog grows all episode.
* ``surge``: ``three_cell`` with 60 % of the UEs (9 of 15) in the hotspot around BS 0; from step 50
  (``surge_step``) the UEs attached to cell 0 send a job every step (``surge_job_prob = 1.0``,
  ``surge_cell = 0``). Before the surge every cell keeps up (fulfillment about 99 % with a 0.5/0.5
  split); after it, cell 0's MEC is short of compute (cell 0 demand rises from about 88 to about
  104 units per step). Change ``surge_step``, ``surge_cell``, ``surge_job_prob`` by override.
* ``seven_cell``: 7 BSs in a hexagonal layout (a centre BS at (180, 180) and six BSs 120 m around
  it) in a 360 x 360 m area, 35 UEs (5 per cell), 7 sensors per cell (49), every MEC 100 units and
  BS 100 MHz: the load per cell equals ``three_cell``'s. Sensor placement succeeds for every seed
  we tried (the Voronoi cell of each BS holds its 20-90 m ring of sensors; tested).
* ``seven_cell_hetero``: ``seven_cell`` with the centre MEC at 50 units and 30 % of the UEs
  (11 of 35) in the hotspot around the centre BS.

:func:`hex_positions` builds the hexagonal layout for other sizes.
"""

from __future__ import annotations

import math
from dataclasses import replace

from envs.core.params import EnvParams


def hex_positions(center: float, spacing: float) -> tuple[tuple[float, float], ...]:
    """A centre site and the six sites of the first hexagonal ring ``spacing`` m around it."""
    ring = tuple(
        (round(center + spacing * math.cos(math.radians(60 * k)), 6),
         round(center + spacing * math.sin(math.radians(60 * k)), 6))
        for k in range(6)
    )  # fmt: skip
    return ((center, center), *ring)


def multicell_presets(three_cell: EnvParams) -> dict[str, EnvParams]:
    """The multi-cell presets derived from the core's ``three_cell`` (see the module docstring)."""
    presets: dict[str, EnvParams] = {
        "three_cell_hetero": replace(
            three_cell,
            scenario=replace(
                three_cell.scenario,
                mec_capacity=(50.0, 100.0, 100.0),
                ue_hotspot_cell=0,
                ue_hotspot_fraction=0.4,
                ue_hotspot_radius_m=50.0,
            ),
        ),
        "surge": replace(
            three_cell,
            scenario=replace(
                three_cell.scenario,
                ue_hotspot_cell=0,
                ue_hotspot_fraction=0.6,
                ue_hotspot_radius_m=50.0,
                surge_step=50,
                surge_cell=0,
                surge_job_prob=1.0,
            ),
        ),
        "seven_cell": replace(
            three_cell,
            scenario=replace(
                three_cell.scenario,
                area_m=360.0,
                bs_positions=hex_positions(180.0, 120.0),
                bandwidth_hz=(100e6,) * 7,
                mec_capacity=(100.0,) * 7,
                n_sensors=(7,) * 7,
                n_ues=35,
            ),
        ),
    }
    presets["seven_cell_hetero"] = replace(
        presets["seven_cell"],
        scenario=replace(
            presets["seven_cell"].scenario,
            mec_capacity=(50.0,) + (100.0,) * 6,
            ue_hotspot_cell=0,
            ue_hotspot_fraction=0.3,
            ue_hotspot_radius_m=50.0,
        ),
    )
    return presets


# every multi-cell scenario, the core's three_cell first
SCENARIOS: tuple[str, ...] = (
    "three_cell", "three_cell_hetero", "surge", "seven_cell", "seven_cell_hetero", "city_19",
    "city_49",
)  # fmt: skip
