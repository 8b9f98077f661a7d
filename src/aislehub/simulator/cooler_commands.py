"""What a cooler does when told to: its writable property and its direct methods.

Each command is a function ``(cooler, payload) -> (status, JSON payload)`` in a table, so a
new command is one function and one table entry. Statuses are HTTP-like, as IoT Hub
expects from method responses: 200 done, 400 bad payload, 404 unknown, 409 busy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from aislehub.simulator.cooler import Cooler

CommandResult: TypeAlias = tuple[int, Any]
DEFAULT_DEFROST_MIN = 20
MAX_DEFROST_MIN = 60


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def set_target_temperature(cooler: Cooler, value: Any) -> dict[str, Any]:
    """The writable ``targetTemperature``: ``{"value", "ac", "ad"}`` (the caller adds "av")."""
    p = cooler.profile
    number = _number(value)
    if number is None or not p.setpoint_min_c <= number <= p.setpoint_max_c:
        why = (
            f"targetTemperature must be a number from {p.setpoint_min_c:g}"
            f" to {p.setpoint_max_c:g} °C"
        )
        return {"value": value, "ac": 400, "ad": why}
    cooler.state.setpoint_c = number
    return {"value": value, "ac": 200, "ad": "applied"}


def reboot(cooler: Cooler, payload: Any) -> CommandResult:
    """Restart the controller: uptime starts over and a running defrost is abandoned."""
    uptime = cooler.now - cooler.state.booted_at
    cooler.state.booted_at = cooler.now
    cooler.state.defrost_until = cooler.now
    return 200, {
        "status": "rebooting",
        "firmwareVersion": cooler.profile.firmware_version,
        "uptimeSeconds": round(uptime),
    }


def defrost(cooler: Cooler, payload: Any) -> CommandResult:
    """Stop the compressor and heat the evaporator for ``durationMinutes`` (default 20)."""
    raw = (
        payload.get("durationMinutes", DEFAULT_DEFROST_MIN)
        if isinstance(payload, dict)
        else (DEFAULT_DEFROST_MIN if payload is None else payload)
    )
    minutes = _number(raw)
    if minutes is None or not 1 <= minutes <= MAX_DEFROST_MIN:
        return 400, {"message": f"durationMinutes must be from 1 to {MAX_DEFROST_MIN}"}
    if cooler.defrosting:
        return 409, {
            "status": "alreadyDefrosting",
            "remainingSeconds": round(cooler.state.defrost_until - cooler.now),
        }
    cooler.state.defrost_until = cooler.now + minutes * 60
    return 200, {"status": "defrosting", "durationMinutes": raw}


COMMANDS: dict[str, Callable[[Cooler, Any], CommandResult]] = {
    "reboot": reboot,
    "defrost": defrost,
}


def run(cooler: Cooler, name: str, payload: Any) -> CommandResult:
    command = COMMANDS.get(name)
    if command is None:
        return 404, {"message": f"unknown command {name!r}; known: {sorted(COMMANDS)}"}
    return command(cooler, payload)
