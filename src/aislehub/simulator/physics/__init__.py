"""Device physics for the simulator profiles: one model class per ``"model"`` name.

Every model follows :class:`~aislehub.simulator.physics.base.DeviceModel`: time moves only
through ``advance(now)`` (simulated epoch seconds), every random draw comes from the seed
of its :class:`~aislehub.simulator.profile.DevicePlan`, and its faults are the
:class:`~aislehub.simulator.profile.FaultRecord` ground truth handed to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aislehub.simulator.physics.base import DeviceModel, Message
from aislehub.simulator.profile import DevicePlan, FaultRecord

__all__ = ["MODELS", "DeviceModel", "Message", "build_model"]

Factory = Callable[[Mapping[str, Any], DevicePlan, Sequence[FaultRecord], float], DeviceModel]


def _factories() -> dict[str, Factory]:
    from aislehub.simulator.cooler import Cooler
    from aislehub.simulator.physics.display import DisplayGateway
    from aislehub.simulator.physics.robot import Robot
    from aislehub.simulator.physics.shelf import ShelfReader
    from aislehub.simulator.physics.shipment import Tracker
    from aislehub.simulator.physics.store import StoreHub

    return {
        "cooler": Cooler.from_plan,
        "display-gateway": DisplayGateway,
        "shipment": Tracker,
        "robot": Robot,
        "store": StoreHub,
        "shelf": ShelfReader,
    }


MODELS: tuple[str, ...] = ("cooler", "display-gateway", "shipment", "robot", "store", "shelf")


def build_model(
    model: str,
    physics: Mapping[str, Any],
    plan: DevicePlan,
    faults: Sequence[FaultRecord],
    start: float,
) -> DeviceModel:
    """The model named ``model`` for one device, at simulated time ``start``."""
    factory = _factories().get(model)
    if factory is None:
        raise ValueError(f"unknown simulator model {model!r}; known: {', '.join(MODELS)}")
    return factory(physics, plan, [f for f in faults if f.device_id == plan.device_id], start)
