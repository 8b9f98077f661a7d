"""Simulated devices that are real clients of the gateway (DESIGN §1, Simulator).

Layers, bottom up: ``transport`` (one MQTT connection over asyncio streams, our codec),
``topics`` (the device side of the IoT Hub topics), ``client`` (``DeviceClient``: one
device's connection with reconnect, QoS 1 in flight, twin and method correlation),
``provision`` (DPS over MQTT); then the retail profile ``cooler`` (data + a physics step)
and ``cooler_commands``, ``device`` (a cooler bound to a client), ``fleet`` (many devices
provisioned through a group enrollment) and ``demo`` (``aislehub demo``).
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
