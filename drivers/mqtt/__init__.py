"""MQTT: the gateway's broker link (`link`), one connection (`connection`), the framing of
the incoming stream (`wire`) and backlog replay (`catchup`)."""

from drivers.mqtt.catchup import Delivery
from drivers.mqtt.link import (
    PRIORITY_ALARM,
    PRIORITY_COMMAND,
    PRIORITY_INFO,
    LinkHealth,
    MessageHandler,
    MqttLink,
    MqttSettings,
    Presence,
    Publication,
)

__all__ = [
    "PRIORITY_ALARM",
    "PRIORITY_COMMAND",
    "PRIORITY_INFO",
    "Delivery",
    "LinkHealth",
    "MessageHandler",
    "MqttLink",
    "MqttSettings",
    "Presence",
    "Publication",
]
