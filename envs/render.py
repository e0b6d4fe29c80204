"""Rendering of the MetaLore envs: one fixed-size RGB frame (or a text block) per step.

What a frame shows (``docs/model/cell.md#rendering``):

* the map (left): every cell's BS and MEC site (triangle), its sensors (squares, coloured by the
  age of their latest update completed at the MEC: green fresh, red at or beyond the sync
  threshold ``sigma``, grey none yet; hollow when inactive), the UEs (dots in the colour of their
  serving cell, a line to its BS, the number of their jobs in flight, uplink and BS queue, beside
  them; hollow when inactive), and with the credit pool the units traded at the last clearing as
  arrows from the lending to the borrowing BS (the pool has no bilateral matches: the arrows split
  the matched units pro rata, lender share x borrower share, as the clearing does);
* the panel (right): the step, the traffic regime in force (when there are regimes), and per cell
  the applied ``(w_b, w_c)``, bars for the UE and sensor uplink backlogs and BS (MEC) compute
  queues, and with the pool the share action, the capacity in force, units lent or borrowed and
  the credit balance; at the bottom the UE jobs completed so far (served %) and the mean AoSI and
  AoRI of the jobs completed in the last step.

Rendering only reads the simulator's state: an episode is the same with rendering on or off
(tested), and nothing here runs unless ``render()`` is called. Frames are drawn with Pillow
(imported on the first frame); :func:`cell_text` / :func:`pool_text` give the ``ansi`` view.
Frames are :data:`FRAME_HEIGHT` x :data:`FRAME_WIDTH` x 3 ``uint8`` (both multiples of 16, as
video encoders want them) whatever the scenario.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from envs.core.metrics import (
    K_AORI,
    K_AOSI,
    K_CAPACITY,
    K_Q_S,
    K_Q_UE,
    K_UE_DONE,
    K_UE_GEN,
    K_UP_S,
    K_UP_UE,
    K_WB,
    K_WC,
)
from envs.core.queues import HEAD, LEN
from envs.core.traffic import TR_N_S, TR_N_UE

if TYPE_CHECKING:
    from envs.core.pool.sim import PoolSimulator
    from envs.core.sim import Simulator

FRAME_WIDTH, FRAME_HEIGHT = 640, 400
RENDER_MODES = ["rgb_array", "ansi"]
RENDER_FPS = 10


def render_as(
    mode: str | None, state: Any, frame: Callable[[Any], Any], text: Callable[[Any], str]
) -> Any:
    """What an env's ``render()`` returns in ``mode``: ``frame(state)`` for ``rgb_array``,
    ``text(state)`` for ``ansi``, None without a mode."""
    if mode == "rgb_array":
        return frame(state)
    if mode == "ansi":
        return text(state)
    return None


Frame = NDArray[np.uint8]
RGB = tuple[int, int, int]

# one colour per cell (matplotlib's tab10, so frames and timeline figures agree)
CELL_COLOURS: tuple[RGB, ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)
GREY: RGB = (170, 170, 170)
LIGHT: RGB = (235, 235, 235)
UE_BAR: RGB = (31, 119, 180)
SENSOR_BAR: RGB = (44, 160, 44)
TRADE: RGB = (200, 30, 30)

MAP_SIZE = 380  # side of the map [px]
MARGIN = 10
PANEL_X = MAP_SIZE + 2 * MARGIN  # left edge of the text panel
BAR_W = 110  # full length of a bar [px]
# bar scales [jobs / units]: a bar is full at this value (the number is printed beside it)
UPLINK_SCALE = 200.0
QUEUE_SCALE = 80.0

_fonts: dict[int, Any] = {}


def _font(size: int) -> Any:
    if size not in _fonts:
        from PIL import ImageFont

        _fonts[size] = ImageFont.load_default(size=size)
    return _fonts[size]


def ue_jobs_in_flight(sim: Simulator) -> NDArray[np.int64]:
    """Jobs of every UE ``(U,)`` still in flight: in its uplink queue or a BS UE compute queue."""
    u, c = sim.n_ues, sim.n_cells
    out = np.asarray(sim.dq_m[:u, LEN], dtype=np.int64).copy()
    mask = sim.bq.shape[1] - 1
    for q in range(c):
        n = int(sim.bq_m[q, LEN])
        if n:
            idx = (int(sim.bq_m[q, HEAD]) + np.arange(n)) & mask
            ids = sim.bq[q, idx, 2].astype(np.int64)
            out += np.bincount(ids, minlength=u)[:u]
    return out


def sensor_ages(sim: Simulator) -> NDArray[np.float64]:
    """Age [steps] of every sensor's latest update completed at its MEC (``inf``: none yet)."""
    last = sim.sens[:, 3]
    return np.where(last >= 0, sim.t - last, np.inf)


def _age_colour(age: float, sigma: float) -> RGB:
    if not math.isfinite(age):
        return GREY
    x = min(max(age / max(sigma, 1.0), 0.0), 1.0)  # 0 fresh (green) .. 1 stale (red)
    return (int(40 + 200 * x), int(170 - 130 * x), 40)


class _Canvas:
    """A Pillow image with the few primitives the frames use."""

    def __init__(self) -> None:
        from PIL import Image, ImageDraw

        self.image = Image.new("RGB", (FRAME_WIDTH, FRAME_HEIGHT), WHITE)
        self.draw = ImageDraw.Draw(self.image)

    def text(self, xy: tuple[float, float], text: str, size: int = 12, fill: RGB = BLACK) -> None:
        self.draw.text(xy, text, fill=fill, font=_font(size))

    def heading(self, x: float, y: float, title: str, t: int, horizon: int) -> None:
        """``title  step t/T`` in the panel, the title shortened from the left to fit."""
        step = f"  step {t}/{horizon}"
        room = FRAME_WIDTH - x - 6 - _font(14).getlength(step)
        while len(title) > 4 and _font(14).getlength(title) > room:
            title = "..." + title[4:]  # one character fewer each time
        self.text((x, y), title + step, 14)

    def bar(
        self, x: float, y: float, value: float, scale: float, colour: RGB, label: str,
        centred: bool = False,
    ) -> None:  # fmt: skip
        """A horizontal bar of ``value / scale`` of :data:`BAR_W` (centred: from the middle,
        negative to the left), its label left of it and the value right of it."""
        self.text((x, y - 1), label, 11)
        bx = x + 78
        self.draw.rectangle((bx, y, bx + BAR_W, y + 10), fill=LIGHT)
        frac = max(min(value / scale, 1.0), -1.0 if centred else 0.0) if scale > 0 else 0.0
        if centred:
            mid = bx + BAR_W / 2
            lo, hi = sorted((mid, mid + frac * BAR_W / 2))
            self.draw.rectangle((lo, y, hi, y + 10), fill=colour)
            self.draw.line((mid, y - 1, mid, y + 11), fill=BLACK)
        elif frac > 0:
            self.draw.rectangle((bx, y, bx + frac * BAR_W, y + 10), fill=colour)
        more = "+" if not centred and scale > 0 and value > scale else ""
        self.text((bx + BAR_W + 4, y - 1), f"{_num(value)}{more}", 11)

    def arrow(self, a: tuple[float, float], b: tuple[float, float], width: int) -> None:
        (x0, y0), (x1, y1) = a, b
        length = math.hypot(x1 - x0, y1 - y0)
        if length < 1:
            return
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        # stop short of the BS symbols
        x0, y0, x1, y1 = x0 + 14 * ux, y0 + 14 * uy, x1 - 14 * ux, y1 - 14 * uy
        self.draw.line((x0, y0, x1, y1), fill=TRADE, width=width)
        head = 8 + width
        px, py = -uy, ux
        tip = (x1, y1)
        left = (x1 - head * ux + head * 0.5 * px, y1 - head * uy + head * 0.5 * py)
        right = (x1 - head * ux - head * 0.5 * px, y1 - head * uy - head * 0.5 * py)
        self.draw.polygon([tip, left, right], fill=TRADE)

    def frame(self) -> Frame:
        return np.array(self.image, dtype=np.uint8)


def _num(v: float) -> str:
    """A short number: 3 significant digits, whole numbers from 1000 on."""
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _to_px(xy: NDArray[np.float64], area: float) -> NDArray[np.float64]:
    """Metres to map pixels (y up)."""
    scale = MAP_SIZE / area
    out = np.empty_like(xy)
    out[..., 0] = MARGIN + xy[..., 0] * scale
    out[..., 1] = MARGIN + MAP_SIZE - xy[..., 1] * scale
    return out


def _draw_map(cv: _Canvas, sim: Simulator) -> NDArray[np.float64]:
    """Cells, sensors and UEs; returns the BS pixel positions ``(C, 2)``."""
    s = sim.params.scenario
    d = cv.draw
    d.rectangle((MARGIN, MARGIN, MARGIN + MAP_SIZE, MARGIN + MAP_SIZE), outline=GREY)
    bs = _to_px(sim.cells[:, :2], s.area_m)
    trf = sim.trf
    n_ue_active = int(trf[TR_N_UE]) if trf.size else sim.n_ues
    n_s_active = int(trf[TR_N_S]) if trf.size else max(s.n_sensors)
    sigma = float(sim.params.reward.sync_threshold)
    # sensors
    ages = sensor_ages(sim)
    spx = _to_px(sim.sens[:, :2], s.area_m)
    for i in range(sim.n_sensors):
        c = int(sim.s_cell[i])
        active = i - int(sim.s_start[c]) < n_s_active
        x, y = spx[i]
        colour = _age_colour(float(ages[i]), sigma)
        box = (x - 4, y - 4, x + 4, y + 4)
        d.rectangle(box, fill=colour if active else None, outline=colour if active else GREY)
    # UEs
    jobs = ue_jobs_in_flight(sim)
    upx = _to_px(sim.geo[:, :2], s.area_m)
    for u in range(sim.n_ues):
        c = int(sim.ue_cell[u])
        colour = CELL_COLOURS[c % len(CELL_COLOURS)]
        x, y = upx[u]
        active = u < n_ue_active
        d.line((x, y, bs[c, 0], bs[c, 1]), fill=(215, 215, 215))
        r = 4
        d.ellipse((x - r, y - r, x + r, y + r), fill=colour if active else None, outline=colour)
        if jobs[u] > 0:
            cv.text((x + 5, y - 7), str(int(jobs[u])), 10, colour)
    # base stations on top
    for c in range(sim.n_cells):
        x, y = bs[c]
        colour = CELL_COLOURS[c % len(CELL_COLOURS)]
        d.polygon([(x, y - 9), (x - 8, y + 6), (x + 8, y + 6)], fill=colour, outline=BLACK)
        if sim.n_cells > 1:
            cv.text((x + 9, y + 1), f"BS{c}", 11, colour)
    return bs


def _legend(cv: _Canvas, y: float) -> None:
    d = cv.draw
    x = PANEL_X
    d.polygon([(x + 4, y), (x, y + 8), (x + 8, y + 8)], fill=CELL_COLOURS[0], outline=BLACK)
    cv.text((x + 11, y - 2), "BS+MEC", 10)
    d.ellipse((x + 62, y, x + 70, y + 8), fill=CELL_COLOURS[0])
    cv.text((x + 73, y - 2), "UE (jobs)", 10)
    d.rectangle((x + 128, y, x + 136, y + 8), fill=_age_colour(0.0, 1.0))
    d.rectangle((x + 138, y, x + 146, y + 8), fill=_age_colour(1.0, 1.0))
    cv.text((x + 149, y - 2), "sensor age", 10)


def _traffic_line(sim: Simulator) -> str:
    if not sim.params.scenario.has_regimes or not sim.trf.size:
        return ""
    tr = sim.traffic_now()
    return (
        f"regime {tr['regime']}: p_job {tr['ue_job_prob']:.2g}, {tr['n_ues_active']} UEs, "
        f"update every {tr['sensor_interval']}"
    )


def _totals(sim: Simulator) -> tuple[str, str]:
    acc, kpi = sim.acc, sim.kpi
    gen, done = float(acc[:, K_UE_GEN].sum()), float(acc[:, K_UE_DONE].sum())
    served = f"{100.0 * done / gen:.1f} %" if gen > 0 else "n/a"
    last = float(kpi[:, K_UE_DONE].sum())
    if sim.t > 0 and last > 0:
        aosi = float(kpi[:, K_AOSI].sum()) / last
        aori = float(kpi[:, K_AORI].sum()) / last
        step = f"last step: {last:g} done, AoSI {aosi:.1f}, AoRI {aori:.1f}"
    else:
        step = "last step: no UE job completed"
    return f"UE jobs done {done:g} / {gen:g} (served {served})", step


def _finish(cv: _Canvas, sim: Simulator, x: float) -> Frame:
    """The footer (episode totals, last step, legend) and the finished frame."""
    total, last = _totals(sim)
    cv.text((x, FRAME_HEIGHT - 62), total, 11)
    cv.text((x, FRAME_HEIGHT - 46), last, 11)
    _legend(cv, FRAME_HEIGHT - 22)
    return cv.frame()


def _table(cv: _Canvas, x: float, y: float, cols: tuple[str, ...], rows: list[list[float]]) -> None:
    """One line per cell: its name in its colour, then the values under ``cols``."""
    width = (FRAME_WIDTH - x - 52) / len(cols)
    for j, name in enumerate(cols):
        cv.text((x + 44 + j * width, y), name, 10)
    for c, values in enumerate(rows):
        yy = y + 15 * (c + 1)
        cv.text((x, yy), f"cell {c}", 11, CELL_COLOURS[c % len(CELL_COLOURS)])
        for j, v in enumerate(values):
            cv.text((x + 44 + j * width, yy), _num(v), 11)


def _blank(title: str) -> Frame:
    cv = _Canvas()
    cv.text((MARGIN, MARGIN), title, 14)
    cv.text((MARGIN, MARGIN + 24), "no episode yet: call reset()", 12, GREY)
    return cv.frame()


def render_cell_frame(sim: Simulator, title: str = "MetaLore") -> Frame:
    """The frame of a :class:`~envs.core.sim.Simulator` (one or several cells, no pool)."""
    if not getattr(sim, "_ready", False):
        return _blank(title)
    cv = _Canvas()
    _draw_map(cv, sim)
    x = PANEL_X
    cv.heading(x, MARGIN - 2, title, sim.t, sim.horizon)
    y: float = MARGIN + 20
    regime = _traffic_line(sim)
    if regime:
        cv.text((x, y), regime, 11, (120, 60, 0))
    y += 18
    kpi = sim.kpi
    n = sim.n_cells
    if n > 3:  # many cells: one line each
        cols = ("w_b", "w_c", "up UE", "up S", "q UE", "q S")
        keys = (K_WB, K_WC, K_UP_UE, K_UP_S, K_Q_UE, K_Q_S)
        _table(cv, x, y, cols, [[float(kpi[c, k]) for k in keys] for c in range(n)])
    else:
        step = 14.0 if n == 1 else 13.0
        for c in range(n):
            colour = CELL_COLOURS[c % len(CELL_COLOURS)]
            if n > 1:
                cv.text((x, y - 1), f"cell {c}", 11, colour)
                y += step
            bars = (
                ("w_b (UE bw)", kpi[c, K_WB], 1.0, UE_BAR),
                ("w_c (UE cpu)", kpi[c, K_WC], 1.0, UE_BAR),
                ("uplink UE", kpi[c, K_UP_UE], UPLINK_SCALE, UE_BAR),
                ("uplink sens", kpi[c, K_UP_S], UPLINK_SCALE, SENSOR_BAR),
                ("MEC q UE", kpi[c, K_Q_UE], QUEUE_SCALE, UE_BAR),
                ("MEC q sens", kpi[c, K_Q_S], QUEUE_SCALE, SENSOR_BAR),
            )
            for label, value, scale, colour_bar in bars:
                cv.bar(x, y, float(value), scale, colour_bar, label)
                y += step
            y += 4
    return _finish(cv, sim, x)


def pool_flows(ps: PoolSimulator) -> NDArray[np.float64]:
    """Units lent by cell ``i`` to cell ``j`` at the last clearing ``(C, C)``: the pool matches
    pro rata, so ``lent_i * borrowed_j / matched``."""
    from envs.core.pool.clearing import A_BORROWED, A_LENT

    last = ps.pool.last
    lent, got = last[:, A_LENT], last[:, A_BORROWED]
    matched = float(lent.sum())
    if matched <= 0.0:
        return np.zeros((ps.n_cells, ps.n_cells))
    flows: NDArray[np.float64] = np.outer(lent, got) / matched
    np.fill_diagonal(flows, 0.0)
    return flows


def render_pool_frame(ps: PoolSimulator, title: str = "MetaLore pool") -> Frame:
    """The frame of a :class:`~envs.core.pool.sim.PoolSimulator`: the cells, their backlogs,
    shares, capacities, balances and the last clearing's trades as arrows."""
    from envs.core.pool.clearing import A_ASKED, A_BORROWED, A_LENT, A_OFFERED, G_MATCHED

    sim = ps.sim
    if not getattr(sim, "_ready", False):
        return _blank(title)
    cv = _Canvas()
    bs = _draw_map(cv, sim)
    flows = pool_flows(ps)
    for i in range(ps.n_cells):
        for j in range(ps.n_cells):
            if flows[i, j] > 0.05:
                width = 1 + int(min(flows[i, j] / 10.0, 5.0))
                cv.arrow((bs[i, 0], bs[i, 1]), (bs[j, 0], bs[j, 1]), width)
                mx, my = (bs[i] + 2 * bs[j]) / 3.0
                cv.text((mx + 4, my), f"{flows[i, j]:.0f}", 11, TRADE)
    x = PANEL_X
    cv.heading(x, MARGIN - 2, title, sim.t, sim.horizon)
    y: float = MARGIN + 20
    on = "on" if ps.pool_params.cooperative else "off"
    cv.text(
        (x, y),
        f"pool {on}: price {ps.last_price:.2g}, matched {ps.pool.glob[G_MATCHED]:.0f} units",
        11,
    )
    y += 18
    kpi, last = sim.kpi, ps.pool.last
    base = ps.pool.cap
    endowment = max(float(ps.pool_params.endowment), 1.0)
    n = ps.n_cells
    if n > 3:  # many cells: one line each
        _table(
            cv, x, y, ("q UE", "q S", "offer", "got", "cap", "credit"),
            [
                [float(kpi[c, K_Q_UE]), float(kpi[c, K_Q_S]),
                 float(last[c, A_OFFERED] - last[c, A_ASKED]),
                 float(last[c, A_BORROWED] - last[c, A_LENT]), float(kpi[c, K_CAPACITY]),
                 float(ps.balance[c])]
                for c in range(n)
            ],
        )  # fmt: skip
        n = 0
    step = 12.0
    for c in range(n):
        colour = CELL_COLOURS[c % len(CELL_COLOURS)]
        cap = float(kpi[c, K_CAPACITY])
        net = float(last[c, A_BORROWED] - last[c, A_LENT])
        cv.text((x, y - 1), f"cell {c}: split ({kpi[c, K_WB]:.2f}, {kpi[c, K_WC]:.2f})", 11, colour)
        y += step
        offer = float(last[c, A_OFFERED] - last[c, A_ASKED])
        rows: list[tuple[str, float, float, RGB, bool]] = [
            ("MEC q UE", float(kpi[c, K_Q_UE]), QUEUE_SCALE, UE_BAR, False),
            ("MEC q sens", float(kpi[c, K_Q_S]), QUEUE_SCALE, SENSOR_BAR, False),
            ("offer/-ask", offer, float(base[c]), GREY, True),
            ("got/-lent", net, float(base[c]), TRADE, True),
            ("capacity", cap, 2.0 * float(base[c]), colour, False),
            ("balance", float(ps.balance[c]), 2.0 * endowment, colour, False),
        ]
        for label, value, scale, col, centred in rows:
            cv.bar(x, y, value, scale, col, label, centred)
            y += step
        y += 6
    return _finish(cv, sim, x)


# --- text ------------------------------------------------------------------------------------
def _cell_lines(sim: Simulator) -> list[str]:
    kpi = sim.kpi
    lines = []
    for c in range(sim.n_cells):
        lines.append(
            f"cell {c}: w_b {kpi[c, K_WB]:.2f} w_c {kpi[c, K_WC]:.2f} | uplink UE "
            f"{kpi[c, K_UP_UE]:g} sensor {kpi[c, K_UP_S]:g} | MEC queue UE {kpi[c, K_Q_UE]:g} "
            f"sensor {kpi[c, K_Q_S]:g}"
        )
    return lines


def cell_text(sim: Simulator) -> str:
    """The ``ansi`` view of a simulator: step, regime and one line per cell."""
    if not getattr(sim, "_ready", False):
        return "MetaLore: no episode yet (call reset())\n"
    head = f"MetaLore step {sim.t}/{sim.horizon}"
    regime = _traffic_line(sim)
    total, last = _totals(sim)
    lines = [head + (f" | {regime}" if regime else ""), *_cell_lines(sim), f"{total}; {last}"]
    return "\n".join(lines) + "\n"


def pool_text(ps: PoolSimulator) -> str:
    """The ``ansi`` view of a pool simulator: :func:`cell_text` plus the pool per cell."""
    from envs.core.pool.clearing import A_BORROWED, A_LENT

    sim = ps.sim
    if not getattr(sim, "_ready", False):
        return "MetaLore pool: no episode yet (call reset())\n"
    last = ps.pool.last
    lines = cell_text(sim).rstrip("\n").split("\n")
    lines.insert(1, f"pool: price {ps.last_price:.3g}, matched {ps.last_matched:.1f} units")
    for c in range(ps.n_cells):
        lines.append(
            f"cell {c}: lent {last[c, A_LENT]:.1f} borrowed {last[c, A_BORROWED]:.1f} "
            f"balance {ps.balance[c]:.1f}"
        )
    return "\n".join(lines) + "\n"
