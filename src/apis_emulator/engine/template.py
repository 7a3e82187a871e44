"""The standard unit document new units are made from (the original's ``standard.json``).

Kept as code, not a packaged file, so the engine reads no file; each call returns a fresh tree.
"""

from __future__ import annotations

from typing import Any

from ..modes import Mode

__all__ = ["standard_document"]


def standard_document() -> dict[str, Any]:
    """A new standard unit document: 50 % battery, converter waiting, dvg 350 V, dig 2.3 A."""
    wait = Mode.WAIT
    return {
        "emu": {
            "charge_discharge_power": 0.0, "rsoc": 50.0, "battery_rsoc": 50.0,
            "battery_voltage": 48.0, "battery_current": 0.0, "battery_operation_status": 3,
            "pvc_charge_voltage": 48.0, "pvc_charge_current": 0.0, "pvc_charge_power": 0.0,
            "ups_input_voltage": 100.0, "ups_output_voltage": 100.0, "ups_output_current": 0.0,
            "ups_output_power": 0.0, "ups_output_frequency": 60.0,
            "ups_operation_mode": {"parameter": 80, "mode": 2, "stop_mode": 2},
            "ups_operation_schedule": 1,
            "system_time": {"year": 2019, "month": 1, "day": 1, "hour": 0, "minute": 0},
            "dischargeable_time": {"hour": 0, "minute": 0},
        },
        "dcdc": {
            "status": {"status": wait.code, "statusName": "Waiting", "alarm": "0x0000",
                       "alarmState": "No alarm", "runningState": "off",
                       "operationMode": "Waiting"},
            "powermeter": {"p1": 0.0, "p2": 0.0, "v1": 100.0, "i1": 0.0, "kwh1": 0.0,
                           "kwh2": 0.0},
            "meter": {"vg": 0.0, "ig": 0.0, "wg": 0.0, "vb": 48.0, "ib": 0.0, "wb": 0.0,
                      "tmp": 26.59},
            "vdis": {"dvg": 350.0, "drg": 0.0},
            "param": {"dig": 2.3, "ogv": 380.0, "ugv": 300.0, "cib": 50.0, "obv": 58.4,
                      "ubv": 32.0},
        },
        "oesunit": {"communityId": "community", "clusterId": "cluster", "id": "E000",
                    "display": "E000", "sn": "EMU-E000", "budo": "0", "ip": "", "ipv6_ll": "",
                    "ipv6_g": "", "mac": "", "on": True},
        "time": "2019/01/01-00:00:00",
    }
