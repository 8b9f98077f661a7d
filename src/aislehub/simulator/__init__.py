"""Simulated devices that are real clients of the gateway (DESIGN §1, Simulator).

Layers, bottom up: ``transport`` (one MQTT connection over asyncio streams, our codec),
``topics`` (the device side of the IoT Hub topics), ``client`` (``DeviceClient``: one
device's connection with reconnect, QoS 1 in flight, twin and method correlation),
``provision`` (DPS over MQTT); ``profile`` (``simulator.json``: device plans and the
fault schedule, the ground truth), ``physics`` (one seeded model per template: ``cooler``
and ``cooler_commands``, displays, shipments, robots, stores, shelves), ``device`` (a
model bound to a client, on a compressible clock), ``fleet`` (many devices provisioned
through a group enrollment), ``simulate`` (``aislehub simulate``) and ``demo``
(``aislehub demo``).
"""

from aislehub.simulator.client import DeviceClient
from aislehub.simulator.cooler import Cooler, CoolerProfile, Outlet
from aislehub.simulator.handlers import CloudMessage, Handlers
from aislehub.simulator.provision import provision
from aislehub.simulator.transport import Endpoint, device_ssl_context

__all__ = [
    "CloudMessage",
    "Cooler",
    "CoolerProfile",
    "DeviceClient",
    "Endpoint",
    "Handlers",
    "Outlet",
    "device_ssl_context",
    "provision",
]
