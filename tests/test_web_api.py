"""Every path of specification §5 against a real server: status codes, keys, JSON types, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from web_support import Server, start_server, write_dataset

NUMBER = (int, float)
EMU_NUMBERS = ("charge_discharge_power", "rsoc", "battery_rsoc", "battery_voltage",
               "battery_current", "pvc_charge_voltage", "pvc_charge_current", "pvc_charge_power",
               "ups_input_voltage", "ups_output_voltage", "ups_output_current", "ups_output_power",
               "ups_output_frequency", "ups_operation_schedule")
STATUS_STRINGS = ("status", "statusName", "alarm", "alarmState", "runningState", "operationMode")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data: Path):
    """A running server (acceleration 10, Δt 1 s)."""
    srv = start_server(tmp_path_factory.mktemp("serve"), data, units=4)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def frozen_server(tmp_path_factory: pytest.TempPathFactory, data: Path):
    """A server whose clock ticks only once a minute: its state is still between requests
    (the tests that use it run within seconds of one another)."""
    srv = start_server(tmp_path_factory.mktemp("frozen"), data, units=3,
                       env={"APIS_EMULATOR_SLEEPTIME": "60"})
    yield srv
    srv.stop()


@pytest.fixture()
def frozen(frozen_server: Server) -> Server:
    """The frozen server as it started: its 3 standard units (/restart), no save file."""
    (frozen_server.cwd / "jsontmp" / "lastSave.json").unlink(missing_ok=True)
    with frozen_server.client() as c:
        assert sorted(c.get("/restart").json()) == ["E001", "E002", "E003"]
    return frozen_server


def _types(tree: dict, numbers: tuple[str, ...], where: str) -> None:
    for key in numbers:
        assert isinstance(tree[key], NUMBER) and not isinstance(tree[key], bool), (where, key)


def check_full_unit(unit: dict, unit_id: str) -> None:
    """Keys, nesting and JSON types of shared/docs/unit-json.md."""
    emu, dcdc = unit["emu"], unit["dcdc"]
    _types(emu, EMU_NUMBERS, "emu")
    _types(emu["ups_operation_mode"], ("parameter", "mode", "stop_mode"), "ups_operation_mode")
    assert emu["ups_operation_mode"]["mode"] in (2, 5)
    _types(emu["system_time"], ("year", "month", "day", "hour", "minute"), "system_time")
    _types(emu["dischargeable_time"], ("hour", "minute"), "dischargeable_time")
    for key in STATUS_STRINGS:
        assert isinstance(dcdc["status"][key], str), key
    _types(dcdc["powermeter"], ("p1", "p2", "v1", "i1", "kwh1", "kwh2"), "powermeter")
    _types(dcdc["meter"], ("vg", "ig", "wg", "vb", "ib", "wb", "tmp"), "meter")
    _types(dcdc["vdis"], ("dvg", "drg"), "vdis")
    _types(dcdc["param"], ("dig", "ogv", "ugv", "cib", "obv", "ubv"), "param")
    oes = unit["oesunit"]
    assert oes["id"] == unit_id
    for key in ("display", "ip", "ipv6_ll", "ipv6_g", "mac", "sn", "budo"):
        assert isinstance(oes[key], str), key
    assert isinstance(oes["on"], bool)
    assert time.strptime(unit["time"], "%Y/%m/%d-%H:%M:%S")
    assert 0 <= emu["rsoc"] <= 100


def test_get_log_lists_every_unit_with_full_documents(server: Server) -> None:
    with server.client() as c:
        r = c.get("/get/log")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    units = r.json()
    assert sorted(units) == ["E001", "E002", "E003", "E004"]
    for unit_id, unit in units.items():
        check_full_unit(unit, unit_id)


def test_get_unit_trims_dcdc_as_the_reference(server: Server) -> None:
    with server.client() as c:
        unit = c.get("/get/unit/E002").json()
    assert set(unit) == {"emu", "dcdc", "oesunit", "time"}
    assert unit["emu"]["battery_operation_status"] == 3
    assert set(unit["dcdc"]) == {"status", "meter", "vdis", "param"}
    assert set(unit["dcdc"]["status"]) == {"status", "alarmState", "operationMode"}
    assert set(unit["dcdc"]["meter"]) == {"wg", "tmp", "vb", "wb", "vg", "ib", "ig"}
    assert set(unit["dcdc"]["vdis"]) == {"dvg", "drg"}
    assert set(unit["dcdc"]["param"]) == {"dig"}


@pytest.mark.parametrize("path, keys", [
    ("/get/dcdc/status/E001", {"status", "meter"}),
    ("/get/dcdc/E001", {"status", "powermeter", "meter", "vdis", "param"}),
    ("/get/emu/E001", set(EMU_NUMBERS) | {"ups_operation_mode", "system_time",
                                          "dischargeable_time", "battery_operation_status"}),
    ("/set/dcdc/E004?mode=0x0000&dvg=350.0&dig=0.0&drg=0", {"status", "meter", "vdis", "param"}),
    ("/set/dcdc/voltage/E004?dvg=350.0&drg=0", {"meter", "vdis"}),
    ("/set/dcdc/current/E004?dig=0.0", {"meter", "param"}),
])
def test_read_and_set_paths_answer_json_objects(server: Server, path: str, keys: set) -> None:
    with server.client() as c:
        r = c.get(path)
    assert r.status_code == 200, r.text
    assert set(r.json()) == keys


def test_acceleration_get_and_set(server: Server) -> None:
    with server.client() as c:
        assert c.get("/get/acc").json() == 10
        assert c.get("/set/acc/20").json() == 20
        assert c.get("/get/acc").json() == 20
        assert c.get("/set/acc/10.0").json() == 10


def test_set_dcdc_accepts_java_number_texts(server: Server) -> None:
    with server.client() as c:
        r = c.get("/set/dcdc/E003?mode=0x0000&dvg=350.0&dig=1.0E-4&drg=0")
        assert r.status_code == 200
        assert r.json()["param"]["dig"] == pytest.approx(1e-4)
        r = c.get("/set/dcdc/current/E003?dig=0.29999995")
        assert r.json()["param"]["dig"] == pytest.approx(0.29999995)
        c.get("/set/dcdc/E003?mode=0x0000&dvg=350.0&dig=0.0&drg=0")


def test_page_openapi_and_docs(server: Server) -> None:
    with server.client() as c:
        assert c.get("/").status_code == 200
        spec = c.get("/openapi.json").json()
        assert c.get("/docs").status_code == 200
    params = {p["name"]: p for p in spec["paths"]["/set/dcdc/{oesid}"]["get"]["parameters"]}
    assert {"oesid", "mode", "dvg", "dig", "drg", "p1", "p2"} <= set(params)
    assert "0x0014" in json.dumps(params["mode"]["schema"])
    assert "number" in json.dumps(params["dvg"]["schema"])


BAD_REQUESTS = [
    # path, status, parameter named in the answer
    ("/set/dcdc/E001?mode=0x0001&dvg=350.0&dig=1.0&drg=0", 400, "mode"),  # unknown mode code
    ("/set/dcdc/E001?dvg=350.0&dig=1.0&drg=0", 400, "mode"),  # missing mode (froze the original)
    ("/set/dcdc/E001?mode=0x0014&dig=1.0", 400, "dvg"),  # missing dvg
    ("/set/dcdc/E001?mode=0x0014&dvg=abc&dig=1.0", 400, "dvg"),  # not a number
    ("/set/dcdc/E001?mode=0x0014&dvg=nan&dig=1.0", 400, "dvg"),  # NaN
    ("/set/dcdc/E001?mode=0x0014&dvg=inf&dig=1.0", 400, "dvg"),  # infinite
    ("/set/dcdc/E001?mode=0x0041&dvg=350&dig=-1.0", 400, "dig"),  # current below 0
    ("/set/dcdc/E001?mode=0x0041&dvg=350&dig=1&drg=5", 400, "drg"),  # droop beyond 1
    ("/set/dcdc/voltage/E001?dvg=", 400, "dvg"),  # empty value
    ("/set/dcdc/voltage/E001", 400, "dvg"),  # missing
    ("/set/dcdc/current/E001?dig=-0.5", 400, "dig"),  # negative current
    ("/set/dcdc/current/E001?dig=Infinity", 400, "dig"),
    ("/set/emu/E001?rsoc=150", 400, "rsoc"),  # rsoc outside 0–100
    ("/set/emu/E001?rsoc=-50", 400, "rsoc"),
    ("/set/emu/E001?voltage=3", 400, "voltage"),  # unknown emu key
    ("/set/emu/E001?rsoc=40&bogus=1", 400, "bogus"),  # one bad key refuses all
    ("/set/acc/-3", 400, "acceleration"),  # negative acceleration
    ("/set/acc/0", 400, "acceleration"),  # zero acceleration
    ("/set/acc/fast", 400, "acceleration"),
    ("/set/acc/nan", 400, "acceleration"),
    ("/set/dcdc/E999?mode=0x0014&dvg=350&dig=1", 404, "oesid"),  # unknown unit
    ("/set/dcdc/voltage/E999?dvg=350", 404, "oesid"),
    ("/set/dcdc/current/E999?dig=1", 404, "oesid"),
    ("/set/emu/E999?rsoc=40", 404, "oesid"),
    ("/get/unit/E999", 404, "oesid"),
    ("/get/dcdc/status/E999", 404, "oesid"),
    ("/get/dcdc/E999", 404, "oesid"),
    ("/get/emu/E999", 404, "oesid"),
]


def test_bad_input_is_refused_and_changes_nothing(frozen: Server) -> None:
    with frozen.client() as c:
        before = c.get("/get/log").json()
        acc = c.get("/get/acc").json()
        for path, status, field in BAD_REQUESTS:
            r = c.get(path)
            assert r.status_code == status, (path, r.text)
            body = r.json()
            assert body["field"] == field, (path, body)
            named = field if status == 400 else str(body["value"])  # 404 names the unknown id
            assert named in body["error"] and body["accepted"], (path, body)
        assert c.get("/get/log").json() == before
        assert c.get("/get/acc").json() == acc
        # the server still serves and commands still work after all that
        assert c.get("/set/dcdc/E001?mode=0x0014&dvg=350.0&dig=2.3&drg=0").status_code == 200
    assert "WARNING" in frozen.log()


def test_bad_input_does_not_disturb_the_clock(server: Server) -> None:
    """Emulated time keeps advancing at the set acceleration through a burst of bad requests."""
    def emulated(c: httpx.Client) -> float:
        return time.mktime(time.strptime(c.get("/get/unit/E001").json()["time"],
                                         "%Y/%m/%d-%H:%M:%S"))
    with server.client() as c:
        c.get("/set/acc/10")
        t0, w0 = emulated(c), time.monotonic()
        deadline = w0 + 3.0
        while time.monotonic() < deadline:
            for path, _, _ in BAD_REQUESTS[:12]:
                c.get(path)
        time.sleep(1.2)
        t1, w1 = emulated(c), time.monotonic()
    pace = (t1 - t0) / (w1 - w0)
    assert 7.0 <= pace <= 13.0, pace  # ticks are 1 s apart: ±1 tick over ~4 s


def test_save_change_load_last_restores_exactly(frozen: Server) -> None:
    with frozen.client() as c:
        c.get("/set/dcdc/E001?mode=0x0014&dvg=350.0&dig=2.3&drg=0")
        c.get("/set/emu/E002?rsoc=42.125")
        saved = c.get("/save")
        assert saved.status_code == 200
        before = c.get("/get/log").json()
        c.get("/set/emu/E002?rsoc=90")
        c.get("/set/dcdc/E001?mode=0x0000&dvg=350.0&dig=0.0&drg=0")
        c.get("/add/unit")
        assert c.get("/get/log").json() != before
        loaded = c.get("/get/last")
        assert loaded.status_code == 200
        assert loaded.json() == before
        assert c.get("/get/log").json() == before
    content = json.loads((frozen.cwd / "jsontmp" / "lastSave.json").read_text())
    assert set(content) == set(before)


def test_load_last_refuses_missing_and_invalid_files(frozen: Server) -> None:
    path = frozen.cwd / "jsontmp" / "lastSave.json"
    with frozen.client() as c:
        before = c.get("/get/log").json()
        r = c.get("/get/last")
        assert r.status_code == 404 and "Save All" in r.json()["error"]
        path.parent.mkdir(exist_ok=True)
        path.write_text('{"E001": {"emu": {"rsoc": 50')
        assert c.get("/get/last").status_code == 422
        doc = json.loads(json.dumps(before["E001"]))
        doc["dcdc"]["status"]["status"] = "0x0099"
        path.write_text(json.dumps({"E001": doc}))
        r = c.get("/get/last")
        assert r.status_code == 422 and "0x0099" in r.json()["error"]
        assert c.get("/get/log").json() == before


def test_add_remove_and_restart(frozen: Server) -> None:
    with frozen.client() as c:
        assert sorted(c.get("/add/unit").json()) == ["E001", "E002", "E003", "E004"]
        assert sorted(c.get("/remove/unit").json()) == ["E001", "E002", "E003"]
        c.get("/set/emu/E001?rsoc=12")
        c.get("/set/dcdc/E001?mode=0x0014&dvg=350.0&dig=2.3&drg=0")
        c.get("/add/unit")
        units = c.get("/restart").json()
        assert sorted(units) == ["E001", "E002", "E003"]
        assert units["E001"]["emu"]["rsoc"] == 50.0
        assert units["E001"]["dcdc"]["status"]["status"] == "0x0000"
        for _ in range(3):
            c.get("/remove/unit")
        r = c.get("/remove/unit")
        assert r.status_code == 400 and c.get("/get/log").json() == {}
        assert c.get("/add/unit").json().keys() == {"E001"}


def test_cross_site_requests_to_state_changing_paths_are_refused(frozen: Server) -> None:
    with frozen.client() as c:
        before = c.get("/get/log").json()
        evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        for path in ("/set/emu/E001?rsoc=10", "/save", "/restart", "/add/unit",
                     "/set/dcdc/E001?mode=0x0014&dvg=350&dig=2.3", "/get/last"):
            r = c.get(path, headers=evil)
            assert r.status_code == 403, path
        assert c.get("/set/emu/E001?rsoc=10", headers={"Origin": "http://evil.example"}
                     ).status_code == 403
        assert c.get("/get/log").json() == before
        # reads from anywhere, same-origin browser writes and header-less clients (apis-main)
        assert c.get("/get/unit/E001", headers=evil).status_code == 200
        same = {"Origin": frozen.url, "Sec-Fetch-Site": "same-origin"}
        assert c.get("/set/emu/E001?rsoc=11", headers=same).status_code == 200
        assert c.get("/set/emu/E001?rsoc=12").status_code == 200


def test_allow_list_refuses_other_clients(tmp_path: Path, data: Path) -> None:
    # loopback allowed: we are served; another network only: we get 403
    srv = start_server(tmp_path / "a", data, units=2, env={"APIS_EMULATOR_ALLOW": "127.0.0.0/8"})
    try:
        assert httpx.get(srv.url + "/get/unit/E001").status_code == 200
    finally:
        srv.stop()
    config = tmp_path / "other.toml"
    config.write_text('allow = ["10.1.2.0/24"]\n')
    srv2 = _start_refusing(tmp_path / "b", data, config)
    try:
        r = httpx.get(srv2.url + "/get/unit/E001")
        assert r.status_code == 403 and "allow-list" in r.json()["error"]
    finally:
        srv2.stop()


def _start_refusing(cwd: Path, data: Path, config: Path) -> Server:
    import subprocess
    import sys

    from web_support import free_port
    port = free_port()
    cwd.mkdir(parents=True)
    process = subprocess.Popen([sys.executable, "-m", "apis_emulator", "serve", "2", "--port",
                                str(port), "--data", str(data), "--config", str(config)],
                               cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(process, f"http://127.0.0.1:{port}", cwd, cwd / "none")
    for _ in range(600):
        try:
            if httpx.get(server.url + "/get/acc", timeout=1.0).status_code == 403:
                return server
        except httpx.HTTPError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("server did not start")


def test_static_files_stay_inside_their_folder(server: Server) -> None:
    with server.client() as c:
        for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
                     "/static/../../../../etc/passwd"):
            r = c.get(path)
            assert r.status_code in (400, 404), path
            assert "import" not in r.text and "root:" not in r.text


def test_sigterm_stops_cleanly(tmp_path: Path, data: Path) -> None:
    srv = start_server(tmp_path, data, units=2)
    assert srv.stop() == 0
    assert "emulator stopped" in srv.log()
    assert (tmp_path / "log" / "apis-emulator.log").exists()
