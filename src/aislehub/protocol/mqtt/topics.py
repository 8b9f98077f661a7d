"""Topic Name and Topic Filter rules (MQTT 3.1.1 section 4.7).

Both raise :class:`MalformedPacket`: a peer that sends a bad topic breaks the protocol
and the connection is closed (section 4.8).
"""

from __future__ import annotations

from aislehub.errors import MalformedPacket

__all__ = ["check_topic_filter", "check_topic_name"]


def check_topic_name(topic: str) -> None:
    """A Topic Name (PUBLISH, Will): non-empty and free of wildcards."""
    if not topic:
        raise MalformedPacket("empty topic name [MQTT-4.7.3-1]")
    if "+" in topic or "#" in topic:
        raise MalformedPacket(f"wildcard in topic name {topic!r} [MQTT-3.3.2-2] [MQTT-4.7.1-1]")


def check_topic_filter(topic_filter: str) -> None:
    """A Topic Filter (SUBSCRIBE, UNSUBSCRIBE): wildcards only as whole levels."""
    if not topic_filter:
        raise MalformedPacket("empty topic filter [MQTT-4.7.3-1]")
    if "+" not in topic_filter and "#" not in topic_filter:
        return
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if level == "+" or (level == "#" and index == last):
            continue
        if "#" in level:
            raise MalformedPacket(
                f"'#' must be a whole, final level in {topic_filter!r} [MQTT-4.7.1-2]"
            )
        if "+" in level:
            raise MalformedPacket(f"'+' must be a whole level in {topic_filter!r} [MQTT-4.7.1-3]")
