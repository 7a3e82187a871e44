"""``apis-emulator report DIR`` on a sweep folder: each KPI against each axis, and the table.

Writes into DIR (or ``out_dir``) ``report.md`` (counts, the runs table with energies in [kWh],
the failed runs and their errors) and, per KPI, ``sweep_<kpi>.png``: one panel per axis with
the KPI against that axis, one line per combination of the other axes' values.  With sharing,
``shared_loss`` = shared_out − shared_in [kWh] is added: the energy the deals lost on the way.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .table import read_table
from .task import KPIS, SHARING_KPIS

__all__ = ["sweep_report", "axis_columns"]

log = logging.getLogger(__name__)

#: KPIs that are energies [Wh]: shown and plotted in [kWh].
_ENERGIES = ("pv", "demand", "acin", "wasted", "loss", "shared_in", "shared_out",
             "shared_loss")
_LABELS = {"pv": "PV", "demand": "demand", "acin": "AC in", "wasted": "wasted PV",
           "loss": "losses", "ssr_real": "self-sufficiency ssr_real", "ssr_pv": "ssr_pv",
           "sor": "PV used, sor", "shared_in": "shared into batteries",
           "shared_out": "shared out of batteries", "deals": "deals",
           "shared_loss": "lost in the deals (out − in)"}
_MAX_LEGEND = 12


def axis_columns(columns: Sequence[str]) -> list[str]:
    """The axis columns of a runs table: between ``status`` and the first KPI."""
    end = columns.index(KPIS[0]) if KPIS[0] in columns else len(columns)
    return list(columns[2:end])


def _shown(kpi: str, value: Any) -> str:
    if value is None:
        return "–"
    if kpi in _ENERGIES:
        return f"{value / 1000.0:,.1f}"
    if kpi == "deals":
        return f"{value:,.0f}"
    if kpi == "wall_s":
        return f"{value:.1f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _axis_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "–" if value is None else str(value)


def _text(sweep_dir: Path, rows: list[dict[str, Any]], axes: list[str], kpis: list[str],
          plots: list[str]) -> str:
    failed = [r for r in rows if r["status"] != "ok"]
    head = ["run_id", *axes, *(f"{k} [kWh]" if k in _ENERGIES else k for k in kpis),
            "wall [s]"]
    lines = [f"# Sweep {sweep_dir}", "",
             f"- Rows: {len(rows)} ({len({r['run_id'] for r in rows})} runs), "
             f"{len(rows) - len(failed)} ok, {len(failed)} failed",
             f"- Axes: {', '.join(axes) or 'none'}", "", "## Runs", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["status"] == "ok":
            cells = [r["run_id"], *(_axis_text(r[a]) for a in axes),
                     *(_shown(k, r[k]) for k in kpis), _shown("wall_s", r.get("wall_s"))]
            lines.append("| " + " | ".join(cells) + " |")
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [f"- {r['run_id']}: {r['error']}" for r in failed]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _x_positions(values: list[Any]) -> tuple[dict[Any, float], list[str] | None]:
    """Numbers stay numbers; anything else gets positions 0, 1, … and tick labels."""
    distinct = list(dict.fromkeys(values))
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in distinct):
        return {v: float(v) for v in distinct}, None
    return {v: float(k) for k, v in enumerate(distinct)}, [str(v) for v in distinct]


def _lines(rows: list[dict[str, Any]], others: list[str]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        grouped[", ".join(f"{o}={_axis_text(r[o])}" for o in others) or "all runs"].append(r)
    return grouped


def _panel(ax: Any, rows: list[dict[str, Any]], axis: str, axes: list[str], kpi: str) -> None:
    positions, ticks = _x_positions([r[axis] for r in rows])
    scale = 1000.0 if kpi in _ENERGIES else 1.0
    lines = _lines(rows, [a for a in axes if a != axis])
    for label, members in lines.items():
        points = sorted((positions[r[axis]], r[kpi] / scale) for r in members
                        if r[kpi] is not None)
        if not points:  # e.g. the shared energy of the runs without sharing
            continue
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", linewidth=1.2,
                label=label if len(lines) <= _MAX_LEGEND else None)
    if ticks is not None:
        ax.set_xticks(list(positions.values()), ticks)
    ax.set_xlabel(axis)
    ax.grid(alpha=0.3)
    if 1 < len(lines) <= _MAX_LEGEND:  # under the panel: inside, it hides the lines
        ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  frameon=False)


def _plot_kpi(path: Path, rows: list[dict[str, Any]], axes: list[str], kpi: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, panels = plt.subplots(1, len(axes), figsize=(4.5 * len(axes), 5.5), squeeze=False,
                               layout="constrained")
    for ax, axis in zip(panels[0], axes, strict=True):
        _panel(ax, rows, axis, axes, kpi)
    unit = " [kWh]" if kpi in _ENERGIES else " [-]"
    panels[0][0].set_ylabel(_LABELS.get(kpi, kpi) + unit)
    fig.suptitle(f"{_LABELS.get(kpi, kpi)} against each axis (a line per value of the others)")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _draw(out: Path, ok: list[dict[str, Any]], axes: list[str], kpis: list[str]) -> list[str]:
    drawn: list[str] = []
    try:
        for kpi in kpis:
            if any(r[kpi] is not None for r in ok):
                _plot_kpi(out / f"sweep_{kpi}.png", ok, axes, kpi)
                drawn.append(f"sweep_{kpi}.png")
    except ImportError:
        log.warning("no plots: matplotlib is missing (pip install 'apis-emulator[report]')")
    return drawn


def sweep_report(sweep_dir: Path, out_dir: Path | None = None,
                 plots: bool = True) -> tuple[str, dict[str, Path]]:
    """Report on a sweep folder (it has runs.csv): report.md and a PNG per KPI; the text and
    the files written."""
    out = out_dir if out_dir is not None else sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    columns, rows = read_table(sweep_dir / "runs.csv")
    axes = axis_columns(columns)
    kpis = [k for k in (*KPIS, *SHARING_KPIS) if k in columns]
    if "shared_in" in kpis:
        kpis.append("shared_loss")
        for r in rows:
            both = r["shared_out"] is not None and r["shared_in"] is not None
            r["shared_loss"] = r["shared_out"] - r["shared_in"] if both else None
    ok = [r for r in rows if r["status"] == "ok"]
    drawn = _draw(out, ok, axes, kpis) if plots and ok and axes else []
    text = _text(sweep_dir, rows, axes, kpis, drawn)
    (out / "report.md").write_text(text, encoding="utf-8")
    return text, {"report": out / "report.md", **{p[:-4]: out / p for p in drawn}}
