"""The "where to add" recipes of docs/architecture.md, each followed once."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from apis_emulator.config import Settings
from apis_emulator.control import ControlView, Plan
from apis_emulator.engine import ConverterCommand, Emulator, Mode
from apis_emulator.runner.schedule import Schedule
from apis_emulator.web.guard import RequestGuard
from apis_emulator.web.routes import ROUTES, Route, route, state_changing_prefixes

ROOT = Path(__file__).resolve().parent.parent


def _refusal(guard: RequestGuard, path: str) -> Any:
    """What the guard answers a cross-site browser request for ``path`` (None: let through)."""
    scope = {"type": "http", "path": path, "client": ("127.0.0.1", 1),
             "headers": [(b"sec-fetch-site", b"cross-site"), (b"host", b"127.0.0.1:4390")]}
    return guard._refusal(scope)


def test_a_new_path_is_declared_once_and_guarded_by_default() -> None:
    """A path added to the table is guarded unless marked as a read; an undeclared one
    cannot be registered."""
    table = {**ROUTES, "/set/frobnicate/{oesid}": Route("/set/frobnicate/{oesid}", "user",
                                                         "a new command")}
    guard = RequestGuard(app=None, routes=table)
    assert _refusal(guard, "/set/frobnicate/E001") is not None
    assert _refusal(RequestGuard(app=None), "/set/frobnicate/E001") is None  # not declared
    assert _refusal(guard, "/get/unit/E001") is None  # a read stays open
    assert "/set/frobnicate/" in state_changing_prefixes(table)
    with pytest.raises(KeyError):
        route(FastAPI(), "/set/frobnicate/{oesid}")


def test_every_state_changing_path_is_written_once() -> None:
    """The guard's prefixes are exactly the table's non-read paths, nothing else."""
    expected = {r.path.split("{")[0] for r in ROUTES.values() if not r.reads}
    assert set(state_changing_prefixes()) == expected
    assert "/set/dcdc/" in expected and "/get/last" in expected and "/get/log" not in expected


@dataclasses.dataclass
class NightReference:
    """A toy controller: at 01:00 emulated, E001 becomes the voltage reference."""

    name: str = "night"
    operation_mode: str = "autonomous"
    woken_at: list[float] = dataclasses.field(default_factory=list)

    @property
    def drives_converters(self) -> bool:
        return True

    def set_operation_mode(self, mode: str) -> None:
        self.operation_mode = mode

    def set_time_scale(self, value: float) -> None:
        pass

    def plan(self, view: ControlView) -> Plan:
        return Plan(3600.0 if not self.woken_at else math.inf)

    def wake(self, view: ControlView) -> list[ConverterCommand]:
        self.woken_at.append(view.elapsed)
        return [ConverterCommand("E001", Mode.VOLTAGE_REFERENCE, dvg=350.0, dig=2.3)]

    def settled(self, view: ControlView) -> None:
        pass

    def units_replaced(self, reason: str, old_ids: Any) -> None:
        pass

    def take_day(self, view: ControlView) -> dict[str, float]:
        return {}

    def take_finished(self) -> list[Any]:
        return []

    def close(self, view: ControlView) -> list[Any]:
        return []

    def status(self, view: ControlView) -> dict[str, Any]:
        return {"controller": self.name}


def test_a_new_controller_runs_through_the_schedule(make_emulator: Any) -> None:
    """A class with the Controller protocol's methods is woken on its step and commands."""
    em: Emulator = make_emulator(2, step=10.0)
    controller = NightReference()
    schedule = Schedule(em, controller)
    schedule.run(7200 // 10)  # two hours in steps of 10 s
    assert controller.woken_at == [3600.0]
    assert Mode(int(em.units.mode[0])) == Mode.VOLTAGE_REFERENCE
    assert em.emulated_s == 7200.0


def test_every_setting_is_documented() -> None:
    """Each Settings field has its row in docs/settings.md (tools/settings_doc.py makes it)."""
    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    missing = [f.name for f in dataclasses.fields(Settings) if f"`{f.name}`" not in text]
    assert missing == []


def test_the_guard_runs_on_a_real_request_path() -> None:
    """The guard answers 403 as ASGI for a cross-site command (the app is never reached)."""
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guard = RequestGuard(app)
    scope = {"type": "http", "path": "/set/dcdc/E001", "client": ("127.0.0.1", 1),
             "headers": [(b"sec-fetch-site", b"cross-site")]}
    asyncio.run(guard(scope, None, send))
    assert reached == [] and sent[0]["status"] == 403
