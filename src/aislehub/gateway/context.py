"""What every connection of one gateway process shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aislehub.hub.hub import DeviceHub
from aislehub.ingest.log import IngestLog
from aislehub.metrics import Metrics
from aislehub.settings import Settings

if TYPE_CHECKING:
    from aislehub.gateway.connection import MqttConnection

# Remaining length allows the 256 KiB payload plus a topic with a full property bag.
TOPIC_HEADROOM = 64 * 1024


@dataclass(slots=True)
class GatewayContext:
    settings: Settings
    hub: DeviceHub
    log: IngestLog
    metrics: Metrics
    connections: set[MqttConnection] = field(default_factory=set)
    # With tenant cells each app appends to its cell's log (aislehub.cells); raises
    # ServiceUnavailable when that cell is not open.
    log_for: Callable[[str], IngestLog] | None = None

    def app_log(self, app_id: str) -> IngestLog:
        return self.log if self.log_for is None else self.log_for(app_id)

    @property
    def max_remaining_length(self) -> int:
        return self.settings.max_message_bytes + TOPIC_HEADROOM
