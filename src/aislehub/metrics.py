"""Process-wide counters and gauges, rendered in Prometheus' text format at ``/metrics``.

Deliberately tiny: increments are a dict update on the event loop thread (the hot path
counts per batch, not per message, where it can).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

_HELP: dict[str, str] = {
    "mqtt_connections_total": "MQTT connections accepted by the gateway",
    "mqtt_connect_refused_total": "CONNECTs refused, by CONNACK return code",
    "mqtt_protocol_errors_total": "Connections closed for a protocol violation",
    "mqtt_oversized_total": "Connections closed for a packet over the size limit",
    "mqtt_topic_refused_total": "Connections closed for a topic outside the device namespace",
    "telemetry_received_total": "Telemetry messages appended to the ingest log",
    "twin_updates_total": "Reported-property patches accepted",
    "methods_invoked_total": "Direct methods sent to devices",
    "c2d_sent_total": "Cloud-to-device messages delivered",
    "dps_registrations_total": "DPS registrations accepted",
    "api_errors_total": "REST API requests answered with an error",
}


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.gauges: dict[str, Callable[[], float]] = {}

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        # Unlabelled counters are bumped per message on the hot path: skip the sort there.
        self.counters[(name, tuple(sorted(labels.items())) if labels else ())] += amount

    def value(self, name: str, **labels: str) -> float:
        return self.counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        self.gauges[name] = read

    def render(self) -> str:
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), value in sorted(self.counters.items()):
            if name not in seen:
                seen.add(name)
                lines += [
                    f"# HELP aislehub_{name} {_HELP.get(name, name)}",
                    f"# TYPE aislehub_{name} counter",
                ]
            label_text = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"aislehub_{name}{{{label_text}}} {value:g}")
        for name, read in sorted(self.gauges.items()):
            lines += [f"# TYPE aislehub_{name} gauge", f"aislehub_{name} {read():g}"]
        return "\n".join(lines) + "\n"
