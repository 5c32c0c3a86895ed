"""MQTT: the gateway's broker link (`link`) with its inbox (`inbox`), outbox (`outbox`),
health (`health`) and bulk lane (`bulk`); one connection's session (`connection`) and read
side (`reader`), the framing of the incoming stream (`wire`) and backlog replay (`catchup`).
The public names are the link's (`link.__all__`)."""

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
    TlsSettings,
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
    "TlsSettings",
]
