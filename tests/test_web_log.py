"""/get/log written from the arrays (web/log_render.py): the very bytes of the documents, unit by
unit, in every state the emulator can be in; gzip only for a client that asks for it."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable

import httpx
import numpy as np
import orjson
import pytest

from apis_emulator.engine import Emulator, load_state, save_state
from apis_emulator.engine.render import all_documents
from apis_emulator.web.app import create_app
from apis_emulator.web.compress import accepts_gzip
from apis_emulator.web.log_render import IrregularDocuments, LogRenderer


def reference(em: Emulator) -> bytes:
    """/get/log as a dict per unit (engine/render.py), the way it was written before."""
    return orjson.dumps(all_documents(em))


@pytest.fixture()
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    em = make_emulator(n_units=6, solar=900.0, load=0.4, households=3,
                       start="2019-05-01T11:00:00")
    em.set_dcdc("E001", mode="0x0014", dvg=350, dig=2.3, drg=0.0)
    em.set_dcdc("E002", mode="0x0002", dvg=350, dig=1.0, p1=123.25)
    em.set_dcdc("E003", mode="0x0041", dvg=352.5, dig=1.5, drg=0.039)
    em.set_emu("E004", {"rsoc": 12.5})  # below the UPS trigger: bypass
    em.advance(300)
    em.set_emu("E005", {"rsoc": 0.0})  # empty: lasts 0 h 0 min
    return em


def test_same_bytes_as_the_documents(emulator: Emulator) -> None:
    """Running, exchanging, a battery empty, one in bypass: byte for byte the dict rendering."""
    renderer = LogRenderer()
    assert renderer.render(emulator) == reference(emulator)
    docs = orjson.loads(renderer.render(emulator))
    assert docs["E004"]["emu"]["ups_operation_mode"]["mode"] == 5  # bypass
    assert docs["E005"]["emu"]["dischargeable_time"] == {"hour": 0, "minute": 0}
    assert docs["E003"]["dcdc"]["status"]["operationMode"] == "Heteronomy CV"
    emulator.set_emu("E006", {"charge_discharge_power": 777.0, "pvc_charge_power": 12.0})
    assert renderer.render(emulator) == reference(emulator)
    emulator.advance(1)
    assert renderer.render(emulator) == reference(emulator)


def test_same_bytes_after_units_change(emulator: Emulator) -> None:
    """Add, remove, reset and a loaded save (other names) cut the documents again."""
    renderer = LogRenderer()
    renderer.render(emulator)
    emulator.add_unit()
    emulator.add_unit()
    assert renderer.render(emulator) == reference(emulator)
    emulator.remove_unit()
    assert renderer.render(emulator) == reference(emulator)
    saved = save_state(emulator)
    saved["E002"]["oesunit"]["display"] = "Müller, \"Haus\" 2"  # text JSON must escape
    load_state(emulator, orjson.loads(orjson.dumps(saved)))
    emulator.advance(5)
    assert renderer.render(emulator) == reference(emulator)
    assert orjson.loads(renderer.render(emulator))["E002"]["oesunit"]["display"] == \
        "Müller, \"Haus\" 2"
    emulator.reset()
    assert renderer.render(emulator) == reference(emulator)


def test_unusual_device_values(make_emulator: Callable[..., Emulator]) -> None:
    """A unit whose voltages are 0 shows 0 A (no division), like the dict rendering."""
    em = make_emulator(n_units=3, solar=500.0, load=0.3, households=3)
    em.units.static[1]["emu"]["pvc_charge_voltage"] = 0.0
    em.units.static[1]["emu"]["ups_output_voltage"] = 0.0
    em.units.static[2]["dcdc"]["powermeter"]["v1"] = 0.0
    em.set_dcdc("E003", mode="0x0000", dvg=350, dig=1.0, p1=500.0)
    em.advance(60)
    assert LogRenderer().render(em) == reference(em)


def test_columns_alike_for_every_unit(make_emulator: Callable[..., Emulator]) -> None:
    """A value every unit shows alike is written once: -0.0 apart from 0.0, NaN as null."""
    em = make_emulator(n_units=4, solar=500.0, load=0.3, households=2)
    em.advance(30)
    em.units.p1[:] = 0.0
    em.units.p1[2] = -0.0  # written "-0.0": the column is not one value
    em.units.drg[:] = np.nan  # null for every unit
    text = LogRenderer().render(em)
    assert text == reference(em)
    assert b'"p1":-0.0' in text and text.count(b'"drg":null') == 4


def test_no_units(make_emulator: Callable[..., Emulator]) -> None:
    em = make_emulator(n_units=1)
    em.remove_unit()
    assert LogRenderer().render(em) == reference(em) == b"{}"


def test_documents_of_another_shape_fall_back(emulator: Emulator) -> None:
    """A unit whose document orders its keys otherwise: the renderer says so, and the server
    writes /get/log unit by unit (the same bytes)."""
    emu = emulator.units.static[2]["emu"]
    emulator.units.static[2]["emu"] = dict(reversed(list(emu.items())))
    with pytest.raises(IrregularDocuments):
        LogRenderer().render(emulator)
    app = create_app(emulator, emulator.settings, run_in_background=False)
    assert get(app, "/get/log").content == reference(emulator)


def get(app: object, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET through the ASGI app in-process."""
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://page.test") as c:
            return await c.get(path, headers=headers or {})

    return asyncio.run(call())


def test_gzip_only_when_asked(emulator: Emulator) -> None:
    """apis-main sends no Accept-Encoding: plain answers; a client asking for gzip gets the
    same bytes compressed (the log from the shared compression, the rest from the middleware)."""
    app = create_app(emulator, emulator.settings, run_in_background=False)
    for path in ("/get/log", "/get/unit/E001", "/api/units", "/set/emu/E002?rsoc=40"):
        plain = get(app, path, {"Accept-Encoding": "identity"})
        assert plain.status_code == 200
        assert "content-encoding" not in plain.headers, path
    packed = get(app, "/get/log", {"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(reference(emulator)) / 4
    assert packed.content == reference(emulator)  # httpx undid the gzip
    small = get(app, "/get/unit/E001", {"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # the polled per-unit reads stay plain
    answer = get(app, "/set/emu/E002?rsoc=41", {"Accept-Encoding": "gzip"})  # all units
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.json()["E002"]["emu"]["rsoc"] == pytest.approx(41.0)


@pytest.mark.parametrize(("header", "accepted"), [
    (b"gzip", True),  # the plain name
    (b"gzip, deflate, br", True),  # a browser's list
    (b"GZip;q=0.5", True),  # any case, a quality above 0
    (b"br, gzip;q=0", False),  # refused by quality 0
    (b"identity", False),  # plain only
    (b"*", True),  # anything goes
    (b"x-gzip", False),  # another name
])
def test_accepts_gzip(header: bytes, accepted: bool) -> None:
    assert accepts_gzip({"headers": [(b"accept-encoding", header)]}) is accepted


def test_gzip_is_gzip() -> None:
    from apis_emulator.web.compress import gzip_bytes

    data = np.arange(1000).tobytes()
    assert gzip.decompress(gzip_bytes(data)) == data
