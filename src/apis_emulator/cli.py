"""Command line: ``apis-emulator serve | simulate | sweep | report``.

Parses flags, builds the settings, the data set and the emulator, and starts things; nothing
else lives here.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__
from .config import Settings, load_settings
from .control import CONTROLLERS, OPERATION_MODES, ApisController, build_controller, controller_step
from .engine import Emulator
from .errors import EmulatorError
from .inputs import load_dataset, read_apis_json
from .recorders import RecorderPlan
from .sweep.command import add_sweep_parser, sweep_command

__all__ = ["main", "build_parser", "setup_logging"]

log = logging.getLogger("apis_emulator")


def setup_logging(config: str | None = None, debug: bool = False) -> None:
    """``logging.config.fileConfig`` on the shipped logging.conf (or ``config``); log/ is made."""
    Path("log").mkdir(exist_ok=True)
    if config is None:
        with resources.as_file(resources.files("apis_emulator") / "logging.conf") as path:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    else:
        logging.config.fileConfig(config, disable_existing_loggers=False)
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="settings file (TOML); names as in specification §7.1")
    parser.add_argument("--data", help="data-set directory (default: the embedded data set)")
    parser.add_argument("--step", type=float, help="physics step Δt [s]")
    parser.add_argument("--start", help="emulated start time, e.g. 2019-01-01T00:00:00")
    parser.add_argument("--logging-config", help="a logging.conf to use instead of the shipped one")


def _control_flags(parser: argparse.ArgumentParser, served: bool) -> None:
    group = parser.add_argument_group("built-in sharing controller (apis-main's deal rules)")
    group.add_argument("--controller", choices=CONTROLLERS, default="none",
                       help="'apis': the converters follow apis-main's deal rules; 'none' "
                            "(default): they follow whoever calls /set/dcdc")
    group.add_argument("--scenario", help="apis-main's scenario.json (default: the shipped one)")
    group.add_argument("--policy", help="apis-main's policy.json (default: the shipped one, "
                                        "every unit a member)")
    group.add_argument("--hw-config", help="apis-main's hwConfig.json (default: the shipped "
                                           "one; nominal Wh = each unit's batterySize)")
    group.add_argument("--seed", type=int, default=0, help="seed of tie-breaks and phases")
    group.add_argument("--time-scale", type=float,
                       help="emulated s per s of apis-main's clock (default: "
                            + ("the acceleration, followed when it changes)" if served
                               else "1, apis-main on real hardware)"))
    group.add_argument("--operation-mode", choices=OPERATION_MODES, default="autonomous",
                       help="global operation mode at the start (default autonomous)")


def _controller(args: argparse.Namespace, emulator: Emulator,
                time_scale: float) -> ApisController | None:
    files = {name: read_apis_json(path) for name, path in
             (("scenario", args.scenario), ("policy", args.policy),
              ("hw_config", args.hw_config)) if path}
    return build_controller(args.controller, emulator, **files, seed=args.seed,
                            time_scale=time_scale, operation_mode=args.operation_mode)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command and flag."""
    parser = argparse.ArgumentParser(prog="apis-emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Web API and the page (real time)")
    serve.add_argument("units", nargs="?", type=int,
                       help="number of units (default: households in the data set)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 4390)")
    serve.add_argument("--acceleration", type=float, help="emulated seconds per wall second")
    _common(serve)
    _control_flags(serve, served=True)
    sim = sub.add_parser("simulate", help="run headless as fast as possible and write outputs")
    sim.add_argument("--units", type=int, help="number of units (default: households)")
    sim.add_argument("--days", type=float, default=365.0, help="emulated days (default 365)")
    sim.add_argument("--out", default="data/output/simulate", help="output directory")
    sim.add_argument("--indiv-interval", type=float,
                     help="individual-log interval [s] of emulated time; 0 = no log "
                          "(default 900)")
    sim.add_argument("--db",
                     help="database: 'sqlite' (a file in --out), a dburl (postgresql://…, "
                          "http://…) or 'none' (default: the settings' saveIndividualToDB "
                          "and dburl; off unless set)")
    sim.add_argument("--indiv-format", choices=("csv", "parquet"),
                     help="individual-log format (default: parquet, a directory of Parquet "
                          "parts, about a quarter of the CSV's size; the suffix of the settings' "
                          "indivLogPath when they set it)")
    sim.add_argument("--no-progress", action="store_true", help="no progress bar")
    _common(sim)
    _control_flags(sim, served=False)
    add_sweep_parser(sub)
    rep = sub.add_parser("report", help="summarise a recorded run: totals, ratios, PNG plots")
    rep.add_argument("run_dir", help="directory of a run (simulate --out DIR, or data/output)")
    rep.add_argument("--out", help="where to write report.md and the plots (default RUN_DIR)")
    rep.add_argument("--no-plots", action="store_true", help="only the text report")
    rep.add_argument("--baseline", metavar="RUN0",
                     help="a run of the same settings without sharing: self-sufficiency, "
                          "imports, wasted PV and losses with and without sharing")
    rep.add_argument("--logging-config", help="a logging.conf to use instead of the shipped one")
    return parser


def _settings(args: argparse.Namespace, mode: str) -> Settings:
    overrides: dict[str, Any] = {"dataSet": args.data, "step": args.step, "start": args.start}
    if mode == "serve":
        overrides.update(b_host=args.host, b_port=args.port, acceleration=args.acceleration)
    settings = load_settings(args.config, overrides=overrides)
    if mode == "simulate" and settings.step is None and args.controller != "none":
        # the controller's periods must fall on steps: House-Keeping and Grid Master 5 s
        settings = settings.replace(step=controller_step(args.time_scale or 1.0))
    return settings.with_defaults_for(mode)


def _simulate(args: argparse.Namespace) -> int:
    from .runner import simulate

    settings = _settings(args, "simulate")
    dataset = load_dataset(settings.dataSet)
    emulator = Emulator(settings, dataset, args.units)
    controller = _controller(args, emulator, args.time_scale or 1.0)
    log.info("simulating %g days of %d units (data set %s, step %g s, controller %s) into %s",
             args.days, len(emulator.units), dataset.name, emulator.dt, args.controller,
             args.out)
    database = None if args.db is None else {"sqlite": True, "none": False}.get(args.db, args.db)
    plan = RecorderPlan.for_simulate(settings, args.out, indiv_interval=args.indiv_interval,
                                     indiv_format=args.indiv_format, database=database)
    result = simulate(emulator, args.days, args.out, progress=not args.no_progress, plan=plan,
                      controller=controller)
    totals = result.totals
    log.info("done in %.1f s: pv %.1f kWh, demand %.1f kWh, AC in %.1f kWh, ssr_real %s",
             result.wall_s, (totals.get("pv") or 0) / 1000, (totals.get("demand") or 0) / 1000,
             (totals.get("acin") or 0) / 1000, totals.get("ssr_real"))
    for name, path in result.files.items():
        log.info("wrote %s: %s", name, path)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .web.server import serve

    settings = _settings(args, "serve")
    dataset = load_dataset(settings.dataSet)
    emulator = Emulator(settings, dataset, args.units)
    controller = _controller(args, emulator, args.time_scale or settings.acceleration)
    return serve(emulator, settings, controller, follow_acceleration=args.time_scale is None)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the process's exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(args.logging_config)
    try:
        if args.command == "report":
            from .report import report

            print(report(args.run_dir, args.out, plots=not args.no_plots,
                         baseline=args.baseline).text, end="")
            return 0
        if args.command == "sweep":
            return sweep_command(args)
        if args.command == "simulate":
            return _simulate(args)
        return _serve(args)
    except EmulatorError as exc:
        log.error("%s", exc)
        print(f"apis-emulator: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
