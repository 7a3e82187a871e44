"""``apis-emulator report RUN_DIR``: a short summary of a recorded run, with plots.

Reads the run's ``summary.csv`` (power-flow-model §7), its individual log (``indivLog.csv``
or the Parquet directory ``indivLog.parquet``) and, for a run with sharing, ``deals.csv``;
writes, into RUN_DIR (or ``out_dir``):

- ``report.md``: period, units, energy totals [kWh], the self-sufficiency ratios; with sharing,
  the energy delivered, taken and lost by deals [kWh] and the deals, in all and per day, and
  the deals per unit; with a baseline (a run of the same settings without sharing), ssr_real,
  ssr_pv, AC in, wasted PV and losses with and without sharing;
- ``daily_energy.png``: pv, demand, AC in, wasted and losses per emulated day [kWh];
- ``soc.png``: the state of charge of each unit over time [%] (and their mean); daily means
  when the run is longer than two weeks;
- with sharing, ``sharing.png`` (shared energy [kWh] and deals per day) and
  ``deals_per_unit.png``; with a baseline, ``ssr_real.png`` (daily ssr_real of both runs).

A run that was killed before its ``sum`` row is reported from its day rows; a summary written
before sharing (without shared_in, shared_out, deals) reads as a run without a controller.
matplotlib (the ``report`` extra) is imported only to draw, with the Agg backend; without it
the text report is still written and the plots are skipped with a message.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .engine.deals import DEAL_COLUMNS
from .errors import DataFileError
from .recorders.indivlog import INDIV_TIME_FORMAT
from .recorders.summary import SHARED_COLUMNS, SUMMARY_COLUMNS, ratios

__all__ = ["report", "RunReport", "DealCounts", "read_summary", "read_soc", "read_deals"]

log = logging.getLogger(__name__)

#: The summary's header before sharing (files written before the built-in controller).
_BEFORE_SHARING = SUMMARY_COLUMNS[:-len(SHARED_COLUMNS)]
_ENERGY_PLOTTED = (("pv", "PV"), ("demand", "demand"), ("acin", "AC in"),
                   ("wasted", "wasted PV"), ("loss", "losses"))


@dataclass
class RunReport:
    """What :func:`report` found and wrote; energies [Wh]."""

    run_dir: Path
    days: list[str]
    totals: dict[str, float | None]
    units: list[str]
    text: str = ""
    files: dict[str, Path] = field(default_factory=dict)
    complete: bool = True  # the summary has its closing rows
    deals: DealCounts | None = None  # deals.csv of a run with sharing
    baseline: Path | None = None  # the run without sharing it was compared with
    #: Per compared key (ssr_real, ssr_pv, acin, wasted, loss): (without, with sharing).
    comparison: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


def _number(cell: str) -> float | None:
    return float(cell) if cell.strip() else None


def _read_rows(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.reader(fh))
    except (FileNotFoundError, NotADirectoryError):
        raise DataFileError(path, "not found: is this the directory of a run (simulate "
                                  "--out DIR, or data/output when served)?") from None


def read_summary(path: Path) -> tuple[list[str], dict[str, list[float | None]],
                                      dict[str, float | None] | None]:
    """Day labels, the day rows by column, and the ``sum`` row (None if the run was cut).

    A summary written before sharing (without shared_in, shared_out, deals) is read too: those
    columns are None, as in a run without a controller.
    """
    rows = _read_rows(path)
    header = tuple(rows[0]) if rows else ()
    if header not in (SUMMARY_COLUMNS, _BEFORE_SHARING):
        raise DataFileError(path, f"is not a summary: the header must be "
                                  f"{','.join(SUMMARY_COLUMNS)} (or, written before sharing, "
                                  f"without {','.join(SHARED_COLUMNS)})", 1)
    days: list[str] = []
    columns: dict[str, list[float | None]] = {c: [] for c in SUMMARY_COLUMNS[1:]}
    total = None
    for line, row in enumerate(rows[1:], start=2):
        values = _row_values(path, line, row, header)
        if row[0] == "sum":
            total = values
        elif row[0] != "avg":
            days.append(row[0])
            for column, value in values.items():
                columns[column].append(value)
    return days, columns, total


def _row_values(path: Path, line: int, row: list[str],
                header: tuple[str, ...]) -> dict[str, float | None]:
    """One summary row by column (all of SUMMARY_COLUMNS; None for an empty or absent cell)."""
    if len(row) != len(header):
        raise DataFileError(path, f"has {len(row)} cells; a row has {len(header)}", line)
    try:
        values = dict(zip(header[1:], (_number(c) for c in row[1:]), strict=True))
    except ValueError:
        raise DataFileError(path, "a cell is not a number", line) from None
    return {c: values.get(c) for c in SUMMARY_COLUMNS[1:]}


def _totals_from_days(columns: dict[str, list[float | None]]) -> dict[str, float | None]:
    energies = ("pv", "demand", "acin", "wasted", "acloss", "dcloss", "loss", "wg", "deltaBatt")
    total: dict[str, float | None] = {k: float(sum(v or 0.0 for v in columns[k]))
                                      for k in energies}
    rsoc = [v for v in columns["avgrsoc"] if v is not None]
    total["avgrsoc"] = float(np.mean(rsoc)) if rsoc else None
    total.update(ratios(total["pv"] or 0.0, total["demand"] or 0.0, total["acin"] or 0.0,
                        total["wasted"] or 0.0, total["deltaBatt"] or 0.0))
    for k in SHARED_COLUMNS:
        given = [v for v in columns[k] if v is not None]
        total[k] = float(sum(given)) if given else None
    return total


def read_soc(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per unit id: (times as datetime64[s], rsoc [%]) from the individual log; {} if none."""
    parquet = run_dir / "indivLog.parquet"
    if parquet.is_dir():
        import pyarrow.parquet as pq

        table = pq.read_table(parquet, columns=["id", "time", "rsoc"])
        codes, names = _codes(table["id"])
        times = table["time"].to_numpy().astype("datetime64[s]")
        rsoc = table["rsoc"].to_numpy()
    elif (run_dir / "indivLog.csv").is_file():
        codes, names, times, rsoc = _read_soc_csv(run_dir / "indivLog.csv")
    else:
        return {}
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return {names[k]: (times[order[bounds[k]:bounds[k + 1]]], rsoc[order[bounds[k]:bounds[k + 1]]])
            for k in np.argsort(names) if bounds[k + 1] > bounds[k]}


def _codes(column: Any) -> tuple[np.ndarray, list[str]]:
    """A pyarrow text column as integer codes and the texts they stand for."""
    encoded = column.dictionary_encode() if not str(column.type).startswith("dictionary") \
        else column
    chunks = encoded.chunks if hasattr(encoded, "chunks") else [encoded]
    names: list[str] = []
    position: dict[str, int] = {}
    codes = []
    for chunk in chunks:  # each chunk has a dictionary of its own
        local = chunk.dictionary.to_pylist()
        remap = np.empty(len(local), dtype=np.int64)
        for j, name in enumerate(local):
            if name not in position:
                position[name] = len(names)
                names.append(name)
            remap[j] = position[name]
        codes.append(remap[chunk.indices.to_numpy(zero_copy_only=False)])
    return (np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64)), names


def _read_soc_csv(path: Path) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        pacsv = None
    if pacsv is not None:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            include_columns=["id", "time", "rsoc"],
            column_types={"id": pa.string(), "time": pa.timestamp("s"), "rsoc": pa.float64()},
            timestamp_parsers=[INDIV_TIME_FORMAT]))
        codes, names = _codes(table["id"])
        return (codes, names, table["time"].to_numpy().astype("datetime64[s]"),
                table["rsoc"].to_numpy())
    found: dict[str, int] = {}
    ids, times, rsoc = [], [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        i_id, i_time, i_rsoc = (header.index(c) for c in ("id", "time", "rsoc"))
        for row in reader:
            ids.append(found.setdefault(row[i_id], len(found)))
            times.append(dt.datetime.strptime(row[i_time], INDIV_TIME_FORMAT))
            rsoc.append(float(row[i_rsoc]))
    return (np.asarray(ids, dtype=np.int64), list(found),
            np.asarray(times, dtype="datetime64[s]"), np.asarray(rsoc, dtype=np.float64))


def _fmt(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "–" if value is None else f"{value / scale:,.{digits}f}"


def _text(run_dir: Path, days: list[str], totals: dict[str, float | None], units: list[str],
          complete: bool, plots: list[str], sections: list[str]) -> str:
    kwh = 1000.0
    period = f"{days[0]} – {days[-1]}" if days else "no complete day"
    lines = [f"# Run {run_dir}", "",
             f"- Period: {len(days)} day(s), {period}"
             + ("" if complete else " (the run was cut: no closing rows; totals from the days)"),
             f"- Units: {len(units) or 'unknown (no individual log)'}", "",
             "## Energy [kWh]", "",
             "| PV | demand | AC in | wasted PV | AC loss | DC loss | DC grid in "
             "| battery change |",
             "|---|---|---|---|---|---|---|---|",
             "| " + " | ".join(_fmt(totals.get(k), kwh) for k in (
                 "pv", "demand", "acin", "wasted", "acloss", "dcloss", "wg", "deltaBatt"))
             + " |", "",
             "## Ratios", "",
             f"- self-sufficiency, real (ssr_real): {_fmt(totals.get('ssr_real'), digits=3)}",
             f"- self-sufficiency from PV (ssr_pv): {_fmt(totals.get('ssr_pv'), digits=3)}",
             f"- PV used, not wasted (sor): {_fmt(totals.get('sor'), digits=3)}",
             f"- share from the utility (r_utility): {_fmt(totals.get('r_utility'), digits=3)}",
             f"- mean state of charge at day ends: {_fmt(totals.get('avgrsoc'))} %", ""]
    lines += sections
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines).rstrip("\n") + "\n"


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (ImportError without matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _kwh(values: list[float | None]) -> list[float]:
    return [np.nan if v is None else v / 1000.0 for v in values]


def _daily_series(fig: Any, ax: Any, days: list[str],
                  series: list[tuple[str, list[float]]]) -> None:
    """Per-day values: grouped bars, one group per day, up to 62 days; lines beyond."""
    if len(days) <= 62:
        width = 0.8 / len(series)
        x = np.arange(len(days))
        for k, (label, values) in enumerate(series):
            ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=label)
        _day_ticks(ax, days)
    else:
        for label, values in series:
            ax.plot(_dates(days), values, label=label, linewidth=1.0)
        fig.autofmt_xdate()


def _day_ticks(ax: Any, days: list[str]) -> None:
    """Day labels (``06/01``) under positions 0, 1, … (at most about 15 of them)."""
    x = np.arange(len(days))
    step = max(1, len(days) // 15)
    ax.set_xticks(x[::step], [d[5:] for d in days[::step]])
    ax.set_xlabel(f"day ({days[0][:4]})")


def _day_positions(fig: Any, ax: Any, days: list[str]) -> np.ndarray:
    """Where per-day values go on the x axis: 0, 1, … up to 62 days (labelled), else dates."""
    if len(days) <= 62:
        _day_ticks(ax, days)
        return np.arange(len(days))
    fig.autofmt_xdate()
    return _dates(days)


def _dates(days: list[str]) -> np.ndarray:
    return np.array([d.replace("/", "-") for d in days], dtype="datetime64[D]")


def _plot_energy(path: Path, days: list[str], columns: dict[str, list[float | None]]) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    _daily_series(fig, ax, days, [(label, _kwh(columns[key])) for key, label in _ENERGY_PLOTTED])
    ax.set_ylabel("energy per day [kWh]")
    ax.set_title("Daily energy of the community")
    ax.grid(alpha=0.3)
    fig.legend(ncols=5, loc="outside lower center", frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _daily_mean(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    days, where = np.unique(times.astype("datetime64[D]"), return_inverse=True)
    return days, np.bincount(where, values) / np.bincount(where)


def _plot_soc(path: Path, soc: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    plt = _pyplot()
    span = max(t[-1] - t[0] for t, _ in soc.values() if len(t)) if soc else np.timedelta64(0)
    daily = span > np.timedelta64(14, "D")  # a long run: daily means, else every sample
    series = {uid: _daily_mean(t, r) if daily else (t, r) for uid, (t, r) in soc.items()}
    fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    many = len(series) > 12
    for unit_id, (times, rsoc) in series.items():
        ax.plot(times, rsoc, linewidth=0.6 if many else 1.2, alpha=0.35 if many else 0.9,
                label=None if many else unit_id)
    if many:
        first = next(iter(series.values()))[0]
        same = [r for t, r in series.values() if len(t) == len(first)]
        ax.plot(first, np.mean(same, axis=0), color="black", linewidth=1.6,
                label=f"mean of {len(same)} units")
    ax.set_ylabel("state of charge rsoc [%]" + (", daily mean" if daily else ""))
    ax.set_ylim(0, 100)
    ax.set_title(f"State of charge of each unit ({len(series)} units"
                 + (", daily means)" if daily else ")"))
    ax.grid(alpha=0.3)
    fig.legend(ncols=min(6, max(1, len(series))), fontsize="small", loc="outside lower center",
               frameon=False)
    fig.autofmt_xdate()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------- sharing
@dataclass(frozen=True)
class DealCounts:
    """Deals of deals.csv per unit: those that started, as charger and as discharger."""

    charger: dict[str, int]
    discharger: dict[str, int]
    logged: int  # rows of deals.csv
    started: int  # deals whose current flowed (the summary's ``deals``)
    reasons: dict[str, int]  # deals per end_reason

    @property
    def units(self) -> list[str]:
        """The units that took part in a deal that started, sorted."""
        return sorted(set(self.charger) | set(self.discharger))


def read_deals(path: Path) -> DealCounts:
    """Count the deals of a deal log (deals.csv) per unit, as charger and as discharger."""
    rows = _read_rows(path)
    if not rows or tuple(rows[0]) != DEAL_COLUMNS:
        raise DataFileError(path, f"is not a deal log: the header must be "
                                  f"{','.join(DEAL_COLUMNS)}", 1)
    col = {c: DEAL_COLUMNS.index(c) for c in ("started", "charge_unit", "discharge_unit",
                                               "end_reason")}
    charger: Counter[str] = Counter()
    discharger: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(DEAL_COLUMNS):
            raise DataFileError(path, f"has {len(row)} cells; a row has {len(DEAL_COLUMNS)}",
                                line)
        reasons[row[col["end_reason"]]] += 1
        if row[col["started"]]:
            charger[row[col["charge_unit"]]] += 1
            discharger[row[col["discharge_unit"]]] += 1
    return DealCounts(dict(charger), dict(discharger), len(rows) - 1,
                      sum(charger.values()), dict(reasons))


def _has_sharing(columns: dict[str, list[float | None]]) -> bool:
    """A built-in controller ran: the summary's sharing cells are filled."""
    return any(v is not None for v in columns["shared_in"])


def _periods(days: list[str]) -> tuple[str, list[tuple[str, list[int]]]]:
    """Rows of the sharing table: each day, or each month for a run longer than 62 days."""
    if len(days) <= 62:
        return "day", [(d, [i]) for i, d in enumerate(days)]
    months: dict[str, list[int]] = {}
    for i, day in enumerate(days):
        months.setdefault(day[:7], []).append(i)
    return "month", list(months.items())


def _shared_sums(columns: dict[str, list[float | None]],
                 rows: list[int] | None = None) -> tuple[float, float, float]:
    """Delivered, taken [Wh] and deals over the day rows ``rows`` (all by default)."""
    picked = range(len(columns["shared_in"])) if rows is None else rows
    return (float(sum(columns["shared_in"][i] or 0.0 for i in picked)),
            float(sum(columns["shared_out"][i] or 0.0 for i in picked)),
            float(sum(columns["deals"][i] or 0.0 for i in picked)))


def _sharing_text(days: list[str], columns: dict[str, list[float | None]]) -> list[str]:
    """report.md's Sharing section: totals, then the table per day (or month)."""
    delivered, taken, count = _shared_sums(columns)
    lost = taken - delivered
    share = f" ({100.0 * lost / taken:.1f} % of what was taken)" if taken else ""
    lines = ["## Sharing", "",
             "Energy that deals moved over the DC grid, from discharging to charging "
             "batteries [kWh]; losses = taken − delivered (converters and grid).", "",
             f"- delivered to charging batteries: {_fmt(delivered, 1000.0, 2)} kWh",
             f"- taken from discharging batteries: {_fmt(taken, 1000.0, 2)} kWh",
             f"- losses of sharing: {_fmt(lost, 1000.0, 2)} kWh{share}",
             f"- deals started: {count:,.0f} ({count / max(1, len(days)):,.1f} a day)", ""]
    return lines + _period_table(days, columns) + [""]


def _period_table(days: list[str], columns: dict[str, list[float | None]]) -> list[str]:
    what, periods = _periods(days)
    lines = [f"| {what} | delivered [kWh] | taken [kWh] | losses [kWh] | deals |",
             "|---|---|---|---|---|"]
    for label, rows in periods:
        delivered, taken, count = _shared_sums(columns, rows)
        lines.append(f"| {label} | {_fmt(delivered, 1000.0, 2)} | {_fmt(taken, 1000.0, 2)} | "
                     f"{_fmt(taken - delivered, 1000.0, 2)} | {count:,.0f} |")
    return lines


def _deals_text(deals: DealCounts | None) -> list[str]:
    """report.md's Deals per unit section."""
    if deals is None:
        return ["## Deals per unit", "", "No deals.csv in the run's directory."]
    ended = ", ".join(f"{reason or '(open)'} {n:,}" for reason, n in sorted(deals.reasons.items()))
    lines = ["## Deals per unit", "",
             f"deals.csv: {deals.logged:,} deal(s), {deals.started:,} started"
             + (f"; ended by {ended}" if ended else "") + ".  Per unit, the deals that "
             "started, as the charging and as the discharging side:", "",
             "| unit | as charger | as discharger |", "|---|---|---|"]
    lines += [f"| {u} | {deals.charger.get(u, 0):,} | {deals.discharger.get(u, 0):,} |"
              for u in deals.units]
    return lines


def _plot_sharing(path: Path, days: list[str], columns: dict[str, list[float | None]]) -> None:
    plt = _pyplot()
    delivered, taken = _kwh(columns["shared_in"]), _kwh(columns["shared_out"])
    fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    _daily_series(fig, ax, days, [
        ("delivered to charging batteries", delivered),
        ("taken from discharging batteries", taken),
        ("losses of sharing", [t - d for d, t in zip(delivered, taken, strict=True)])])
    ax.set_ylabel("energy per day [kWh]")
    ax.grid(alpha=0.3)
    right = ax.twinx()
    deals = [np.nan if v is None else v for v in columns["deals"]]
    right.plot(_day_positions(fig, right, days), deals, color="black",
               marker="o" if len(days) <= 62 else None, linewidth=1.0, label="deals started")
    right.set_ylabel("deals per day")
    right.set_ylim(0, max(1.0, float(np.nanmax(deals + [0.0]))) * 1.15)
    ax.set_title("Energy shared by deals, per day")
    fig.legend(ncols=4, loc="outside lower center", frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_deals_per_unit(path: Path, deals: DealCounts) -> None:
    plt = _pyplot()
    units = deals.units
    x = np.arange(len(units))
    fig, ax = plt.subplots(figsize=(max(10.0, 0.14 * len(units)), 4.5), layout="constrained")
    ax.bar(x - 0.2, [deals.charger.get(u, 0) for u in units], 0.4, label="as charger")
    ax.bar(x + 0.2, [deals.discharger.get(u, 0) for u in units], 0.4, label="as discharger")
    ax.set_xticks(x, units, rotation=90, fontsize=7 if len(units) > 30 else 9)
    ax.set_ylabel("deals that started")
    ax.set_title(f"Deals per unit ({deals.started:,} deals, {len(units)} units)")
    ax.grid(alpha=0.3, axis="y")
    fig.legend(ncols=2, loc="outside lower center", frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------- baseline
#: Compared with the baseline: (key, label, scale, digits); energies shown in [kWh].
_COMPARED = (("ssr_real", "self-sufficiency, real (ssr_real)", 1.0, 4),
             ("ssr_pv", "self-sufficiency from PV (ssr_pv)", 1.0, 4),
             ("acin", "AC in, imports [kWh]", 1000.0, 1),
             ("wasted", "wasted PV [kWh]", 1000.0, 1),
             ("loss", "losses [kWh]", 1000.0, 1))


@dataclass(frozen=True)
class _Baseline:
    """The run without sharing that a run with sharing is compared with."""

    run_dir: Path
    columns: dict[str, list[float | None]]
    totals: dict[str, float | None]


def _span(days: list[str]) -> str:
    return f"{len(days)} day(s), {days[0]} – {days[-1]}" if days else "no day"


def _read_baseline(path: Path, days: list[str],
                   columns: dict[str, list[float | None]]) -> _Baseline:
    """The baseline run at ``path``, checked against the run (its days, demand, no sharing)."""
    summary = path / "summary.csv"
    if (path / "runs.csv").is_file():
        raise DataFileError(path, "is a sweep folder; --baseline takes one run's folder "
                                  "(with its summary.csv)")
    if not summary.is_file():
        raise DataFileError(summary, "not found: --baseline takes the folder of a run of the "
                                     "same settings without sharing (simulate --out DIR, no "
                                     "--controller)")
    base_days, base_columns, base_total = read_summary(summary)
    if base_days != days:
        raise DataFileError(summary, f"the baseline has {_span(base_days)}, the run "
                                     f"{_span(days)}: run the baseline over the same days")
    _check_same_demand(summary, days, base_columns["demand"], columns["demand"])
    shared = sum(v or 0.0 for v in base_columns["deals"])
    if shared:
        raise DataFileError(summary, f"the baseline shares ({shared:,.0f} deals): it must be "
                                     f"a run without sharing (no --controller)")
    totals = base_total if base_total is not None else _totals_from_days(base_columns)
    return _Baseline(path, base_columns, totals)


def _check_same_demand(summary: Path, days: list[str], base: list[float | None],
                       run: list[float | None]) -> None:
    """The same houses use the same energy each day, with or without sharing."""
    for day, b, r in zip(days, base, run, strict=True):
        if not math.isclose(b or 0.0, r or 0.0, rel_tol=1e-9, abs_tol=1e-6):
            raise DataFileError(summary, f"demand on {day} is {(b or 0) / 1000:,.3f} kWh, the "
                                         f"run's {(r or 0) / 1000:,.3f} kWh: the baseline "
                                         f"must be the same houses (units, data set, start)")


def _comparison(base: _Baseline, totals: dict[str, float | None]
                ) -> dict[str, tuple[float | None, float | None]]:
    """Per compared key: (without sharing, with sharing)."""
    return {key: (base.totals.get(key), totals.get(key)) for key, *_ in _COMPARED}


def _baseline_text(base: _Baseline, days: list[str],
                   comparison: dict[str, tuple[float | None, float | None]]) -> list[str]:
    lines = ["## Against the baseline", "",
             f"Baseline {base.run_dir}: the same {len(days)} day(s) without sharing.  "
             "Difference = with sharing − without.", "",
             "| | without sharing | with sharing | difference |", "|---|---|---|---|"]
    for key, label, scale, digits in _COMPARED:
        without, with_ = comparison[key]
        change = None if without is None or with_ is None else with_ - without
        lines.append(f"| {label} | {_fmt(without, scale, digits)} | "
                     f"{_fmt(with_, scale, digits)} | {_signed(change, scale, digits)} |")
    return lines


def _signed(value: float | None, scale: float, digits: int) -> str:
    return "–" if value is None else f"{value / scale:+,.{digits}f}"


def _plot_ssr(path: Path, days: list[str], run: list[float | None],
              base: list[float | None]) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    x = _day_positions(fig, ax, days)
    for label, values in (("without sharing (baseline)", base), ("with sharing", run)):
        ax.plot(x, [np.nan if v is None else v for v in values], label=label,
                marker="o" if len(days) <= 62 else None, linewidth=1.2)
    ax.set_ylabel("self-sufficiency ssr_real [-]")
    ax.set_title("Daily self-sufficiency with and without sharing")
    ax.grid(alpha=0.3)
    fig.legend(ncols=2, loc="outside lower center", frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw(out: Path, days: list[str], columns: dict[str, list[float | None]],
          soc: dict[str, tuple[np.ndarray, np.ndarray]], deals: DealCounts | None,
          base: _Baseline | None) -> list[str]:
    """Draw the plots there are data for; their file names (none without matplotlib)."""
    plots: list[tuple[str, Callable[[Path], None]]] = []
    if days:
        plots.append(("daily_energy.png", partial(_plot_energy, days=days, columns=columns)))
    if soc:
        plots.append(("soc.png", partial(_plot_soc, soc=soc)))
    if days and _has_sharing(columns):
        plots.append(("sharing.png", partial(_plot_sharing, days=days, columns=columns)))
    if days and _has_sharing(columns) and deals is not None and deals.units:
        plots.append(("deals_per_unit.png", partial(_plot_deals_per_unit, deals=deals)))
    if days and base is not None:
        plots.append(("ssr_real.png", partial(_plot_ssr, days=days, run=columns["ssr_real"],
                                              base=base.columns["ssr_real"])))
    drawn: list[str] = []
    try:
        for name, draw in plots:
            draw(out / name)
            drawn.append(name)
    except ImportError:
        log.warning("no plots: matplotlib is missing (pip install 'apis-emulator[report]')")
    return drawn


def report(run_dir: str | Path, out_dir: str | Path | None = None, plots: bool = True,
           baseline: str | Path | None = None) -> RunReport:
    """Summarise the run recorded in ``run_dir``; write report.md and the plots.

    Parameters
    ----------
    run_dir : path
        Holds summary.csv, (for the SOC plot) indivLog.csv or indivLog.parquet/, and (for the
        deals per unit of a run with sharing) deals.csv.
    out_dir : path, optional
        Where to write (default ``run_dir``).
    plots : bool
        False: only the text.
    baseline : path, optional
        A run of the same settings without sharing: self-sufficiency, imports, wasted PV and
        losses with and without sharing.  ``run_dir`` must have sharing.
    """
    run = Path(run_dir)
    if (run / "runs.csv").is_file():  # a sweep's folder: its KPIs against its axes
        if baseline is not None:
            raise DataFileError(run, "is a sweep folder; --baseline compares two runs' folders")
        from .sweep.report import sweep_report

        text, files = sweep_report(run, None if out_dir is None else Path(out_dir), plots)
        return RunReport(run_dir=run, days=[], totals={}, units=[], text=text, files=files)
    out = Path(out_dir) if out_dir is not None else run
    days, columns, total = read_summary(run / "summary.csv")
    base = None if baseline is None else _baseline_of(run, Path(baseline), days, columns)
    out.mkdir(parents=True, exist_ok=True)
    totals = total if total is not None else _totals_from_days(columns)
    soc = read_soc(run)
    deals = (read_deals(run / "deals.csv")
             if _has_sharing(columns) and (run / "deals.csv").is_file() else None)
    result = RunReport(run_dir=run, days=days, totals=totals, units=sorted(soc),
                       complete=total is not None, deals=deals,
                       baseline=None if base is None else base.run_dir,
                       comparison={} if base is None else _comparison(base, totals))
    drawn = _draw(out, days, columns, soc, deals, base) if plots else []
    sections = _sharing_text(days, columns) if _has_sharing(columns) else []
    if base is not None:
        sections += _baseline_text(base, days, result.comparison) + [""]
    if _has_sharing(columns):
        sections += _deals_text(deals) + [""]
    result.text = _text(run, days, totals, result.units, result.complete, drawn, sections)
    (out / "report.md").write_text(result.text, encoding="utf-8")
    result.files = {"report": out / "report.md", **{p.split(".")[0]: out / p for p in drawn}}
    return result


def _baseline_of(run: Path, baseline: Path, days: list[str],
                 columns: dict[str, list[float | None]]) -> _Baseline:
    """The checked baseline; the run itself must have sharing."""
    if not _has_sharing(columns):
        raise DataFileError(run / "summary.csv", "has no sharing (its shared_in, shared_out "
                                                 "and deals are empty): report RUN --baseline "
                                                 "RUN0 compares a run with sharing (RUN, "
                                                 "--controller apis) to one without (RUN0)")
    return _read_baseline(baseline, days, columns)
