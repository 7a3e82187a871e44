"""``apis-emulator report RUN_DIR``: a short summary of a recorded run, with two plots.

Reads the run's ``summary.csv`` (power-flow-model §7) and its individual log (``indivLog.csv``
or the Parquet directory ``indivLog.parquet``) and writes, into RUN_DIR (or ``out_dir``):

- ``report.md``: period, units, energy totals [kWh], the self-sufficiency ratios;
- ``daily_energy.png``: pv, demand, AC in, wasted and losses per emulated day [kWh];
- ``soc.png``: the state of charge of each unit over time [%] (and their mean); daily means
  when the run is longer than two weeks.

A run that was killed before its ``sum`` row is reported from its day rows.  matplotlib (the
``report`` extra) is imported only to draw, with the Agg backend; without it the text report
is still written and the plots are skipped with a message.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataFileError
from .recorders.indivlog import INDIV_TIME_FORMAT
from .recorders.summary import SUMMARY_COLUMNS, ratios

__all__ = ["report", "RunReport", "read_summary", "read_soc"]

log = logging.getLogger(__name__)

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


def _number(cell: str) -> float | None:
    return float(cell) if cell.strip() else None


def read_summary(path: Path) -> tuple[list[str], dict[str, list[float | None]],
                                      dict[str, float | None] | None]:
    """Day labels, the day rows by column, and the ``sum`` row (None if the run was cut)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise DataFileError(path, "not found: is this the directory of a run (simulate "
                                  "--out DIR, or data/output when served)?") from None
    if not rows or tuple(rows[0]) != SUMMARY_COLUMNS:
        raise DataFileError(path, f"is not a summary: the header must be "
                                  f"{','.join(SUMMARY_COLUMNS)}", 1)
    days: list[str] = []
    columns: dict[str, list[float | None]] = {c: [] for c in SUMMARY_COLUMNS[1:]}
    total = None
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(SUMMARY_COLUMNS):
            raise DataFileError(path, f"has {len(row)} cells; a row has "
                                      f"{len(SUMMARY_COLUMNS)}", line)
        try:
            values = [_number(c) for c in row[1:]]
        except ValueError:
            raise DataFileError(path, "a cell is not a number", line) from None
        if row[0] == "sum":
            total = dict(zip(SUMMARY_COLUMNS[1:], values, strict=True))
        elif row[0] != "avg":
            days.append(row[0])
            for column, value in zip(SUMMARY_COLUMNS[1:], values, strict=True):
                columns[column].append(value)
    return days, columns, total


def _totals_from_days(columns: dict[str, list[float | None]]) -> dict[str, float | None]:
    energies = ("pv", "demand", "acin", "wasted", "acloss", "dcloss", "loss", "wg", "deltaBatt")
    total: dict[str, float | None] = {k: float(sum(v or 0.0 for v in columns[k]))
                                      for k in energies}
    rsoc = [v for v in columns["avgrsoc"] if v is not None]
    total["avgrsoc"] = float(np.mean(rsoc)) if rsoc else None
    total.update(ratios(total["pv"] or 0.0, total["demand"] or 0.0, total["acin"] or 0.0,
                        total["wasted"] or 0.0, total["deltaBatt"] or 0.0))
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
          complete: bool, plots: list[str]) -> str:
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
             f"- mean state of charge at day ends: {_fmt(totals.get('avgrsoc'))} %"]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _plot_energy(path: Path, days: list[str], columns: dict[str, list[float | None]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    if len(days) <= 62:  # grouped bars, one group per day
        width = 0.8 / len(_ENERGY_PLOTTED)
        x = np.arange(len(days))
        for k, (key, label) in enumerate(_ENERGY_PLOTTED):
            values = [np.nan if v is None else v / 1000.0 for v in columns[key]]
            ax.bar(x + (k - (len(_ENERGY_PLOTTED) - 1) / 2) * width, values, width, label=label)
        step = max(1, len(days) // 15)
        ax.set_xticks(x[::step], [d[5:] for d in days[::step]])
        ax.set_xlabel(f"day ({days[0][:4]})")
    else:
        dates = np.array([d.replace("/", "-") for d in days], dtype="datetime64[D]")
        for key, label in _ENERGY_PLOTTED:
            values = [np.nan if v is None else v / 1000.0 for v in columns[key]]
            ax.plot(dates, values, label=label, linewidth=1.0)
        fig.autofmt_xdate()
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def report(run_dir: str | Path, out_dir: str | Path | None = None,
           plots: bool = True) -> RunReport:
    """Summarise the run recorded in ``run_dir``; write report.md and the plots.

    Parameters
    ----------
    run_dir : path
        Holds summary.csv and (for the SOC plot) indivLog.csv or indivLog.parquet/.
    out_dir : path, optional
        Where to write (default ``run_dir``).
    plots : bool
        False: only the text.
    """
    run = Path(run_dir)
    if (run / "runs.csv").is_file():  # a sweep's folder: its KPIs against its axes
        from .sweep.report import sweep_report

        text, files = sweep_report(run, None if out_dir is None else Path(out_dir), plots)
        return RunReport(run_dir=run, days=[], totals={}, units=[], text=text, files=files)
    out = Path(out_dir) if out_dir is not None else run
    days, columns, total = read_summary(run / "summary.csv")
    out.mkdir(parents=True, exist_ok=True)
    complete = total is not None
    totals = total if total is not None else _totals_from_days(columns)
    soc = read_soc(run)
    result = RunReport(run_dir=run, days=days, totals=totals, units=sorted(soc),
                       complete=complete)
    drawn: list[str] = []
    if plots:
        try:
            if days:
                _plot_energy(out / "daily_energy.png", days, columns)
                drawn.append("daily_energy.png")
            if soc:
                _plot_soc(out / "soc.png", soc)
                drawn.append("soc.png")
        except ImportError:
            log.warning("no plots: matplotlib is missing (pip install 'apis-emulator[report]')")
    result.text = _text(run, days, totals, result.units, complete, drawn)
    (out / "report.md").write_text(result.text, encoding="utf-8")
    result.files = {"report": out / "report.md", **{p.split(".")[0]: out / p for p in drawn}}
    return result
