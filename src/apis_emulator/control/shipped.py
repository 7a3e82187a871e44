"""apis-main's shipped decision files (``exe/scenario.json``, ``exe/policy.json``,
``exe/hwConfig.json``), as fresh dicts in apis-main's own format.

Kept as code so that the controllers read no file; a user's own files are read by
:mod:`apis_emulator.inputs` and passed in as dicts of the same shape.
"""

from __future__ import annotations

from typing import Any

__all__ = ["shipped_scenario", "shipped_policy", "shipped_hw_config"]


def _limit(limit: int) -> dict[str, Any]:
    return {"limitWh": limit, "pointPerWh": 10}


def shipped_scenario() -> dict[str, Any]:
    """``exe/scenario.json``: one slot for the whole day, thresholds for a 4800 Wh battery."""
    return {
        "#": "place this file at the path defined by 'scenarioFile' in config file",
        "refreshingPeriodMsec": 5000,
        "acceptSelection": {"strategy": "pointAndAmount"},
        "00:00:00-24:00:00": {
            "batteryStatus": {"4320-": "excess", "3600-4320": "sufficient",
                              "2880-3600": "scarce", "-2880": "short"},
            "request": {"excess": {"discharge": _limit(4320)}, "sufficient": {}, "scarce": {},
                        "short": {"charge": _limit(2880)}},
            "accept": {"excess": {"discharge": _limit(3600)},
                       "sufficient": {"discharge": _limit(3600)},
                       "scarce": {"charge": _limit(3600)},
                       "short": {"charge": _limit(3600)}},
        },
    }


def shipped_policy() -> dict[str, Any]:
    """``exe/policy.json`` (every field apis-main ships, decision fields and plumbing)."""
    return {
        "refreshingPeriodMsec": 5000, "operationMode": "stop",
        "memberUnitIds": ["E001", "E002", "E003", "E004"], "largeCapacityUnitIds": ["E001"],
        "operationGridVoltageV": 350, "operationGridVoltageVRange": {"min": 300, "max": 380},
        "gridVoltageSeparationV": 10, "gridVoltageAllowanceV": 4,
        "gridVoltageDropAllowanceV": 20, "gridCurrentStepA": 1, "gridUvloMaskV": 10,
        "safety": {"sumOfDealingUnitGridCurrentAllowancePerUnitA": 0.125,
                   "sumOfDealGridCurrentMaxA": 100,
                   "gridTopologyBasedEvaluation": {"enabled": False, "branchIds": [],
                                                   "branchAssociation": {"": ""},
                                                   "branchCurrentCapacityA": {"": ""}}},
        "heloPeriodMsec": 5000,
        "controller": {
            "dcdc": {"checkpoint": {"retryLimit": 3, "retryWaitMsec": 100},
                     "voltageReference": {"rampUp": {"first": {"timeoutMsec": 180000}},
                                          "authorization": {"numberOfTrials": 3}}},
            "scramVoltageReferenceDelayMsec": 5000, "stopMeTimeoutMsec": 60000,
            "stopMeCheckPeriodMsec": 1000, "dataAcquisitionPeriodMsec": 5000,
            "requestTimeoutMsec": 5000, "retryLimit": 3},
        "user": {"errorHandlingPeriodMsec": 1000, "errorSustainingMsec": 30000,
                 "houseKeepingPeriodMsec": 5000},
        "mediator": {"deal": {"gridCurrentA": 1, "amountMinWh": 50, "amountMaxWh": 50,
                              "amountUnitWh": 50},
                     "negotiationTimeoutMsec": 2000, "dealLoggingPeriodMsec": 5000},
        "gridMaster": {
            "voltageReferenceSide": "chargeUnit", "voltageReferenceTakeOverDvg": "theoretical",
            "masterDealSelection": {"strategy": "newestDeal"},
            "gridMasterSelection": {"strategy": "voltageReferenceUnit", "fixedUnitId": "Exxx"},
            "gridMasterEnsuring": {"interlockInconsistency": {"retryWaitMsec": 2000}},
            "gridMasterWatching": {"absence": {"ensureWaitMsec": 5000}},
            "deal": {"forceStopCondition": {"dischargeUnitLowerLimitRsoc": 20,
                                            "chargeUnitUpperLimitRsoc": 95},
                     "referenceSide": "chargeUnit", "resetLimit": 3},
            "currentCompensation": {"limitOfTrials": 3, "driftAllowanceA": 0.03},
            "gridVoltageOptimization": {"enabled": False},
            "heloPeriodMsec": 5000, "dataCollectionPeriodMsec": 5000,
            "dataCollectionTimeoutMsec": 2000, "mainLoopPeriodMsec": 5000,
            "errorSustainingMsec": 30000},
    }


def shipped_hw_config() -> dict[str, Any]:
    """``exe/hwConfig.json``'s decision fields; ``batteryNominalCapacityWh`` is left out so
    that each unit's nominal capacity is its own batterySize (4800 Wh by default, as shipped)."""
    return {"gridCurrentCapacityA": 2.3, "efficientBatteryGridVoltageRatio": 6.5}
