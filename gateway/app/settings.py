"""How this gateway meets the outside: the broker (connection settings, presence message)
and the bureau's time-series server."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import orjson

from drivers.codec import TopicParser
from drivers.mqtt import MqttSettings, Presence, TlsSettings
from gateway.central.edges import presence_message
from gateway.central.observer import control_subscriptions
from gateway.config.schema import GatewayConfig
from gateway.timeseries.feed import TimeSeriesFeed


def mqtt_settings(
    config: GatewayConfig,
    host: str | None,
    port: int | None,
    durable_acks: bool,
    observed: frozenset[str],
) -> MqttSettings:
    mq = config.mqtt
    topics = TopicParser(config.topic_prefix)
    password = os.environ.get(mq.password_env) if mq and mq.password_env else None
    return MqttSettings(
        host=host or (mq.host if mq else "127.0.0.1"),
        port=port or (mq.port if mq else 1883),
        client_id=mq.client_id if mq and mq.client_id else f"safety-gw-{config.gateway.id}",
        subscriptions=tuple(control_subscriptions(topics, observed)),
        bulk_subscriptions=tuple(topics.bulk_subscriptions),
        username=mq.username if mq else None,
        password=password,
        keepalive_s=mq.keepalive_s if mq else 30,
        manual_acks=durable_acks,
        presence=presence(config, config.topic_prefix),
        tls=mqtt_tls(config),
    )


def mqtt_tls(config: GatewayConfig) -> TlsSettings | None:
    mq = config.mqtt
    if mq is None or not mq.secure:
        return None
    t = mq.tls
    if t is None:
        return TlsSettings()  # mqtts:// alone: the system's CAs, hostname checked

    def path(p: Path | None) -> str | None:
        return None if p is None else str(p)

    return TlsSettings(path(t.ca_file), path(t.cert_file), path(t.key_file), t.check_hostname)


def presence(config: GatewayConfig, prefix: str) -> Presence:
    """This gateway's presence for the bureau: which sites it protects, online or not."""
    gid = config.gateway.id
    served = tuple(s.id for s in config.sites if s.served_by == "self")
    return Presence(
        TopicParser(prefix).presence_topic(gid),
        orjson.dumps(presence_message(gid, True, served)),
        orjson.dumps(presence_message(gid, False, served)),
    )


def time_series(
    config: GatewayConfig, data_dir: Path, clock: Callable[[], float]
) -> TimeSeriesFeed | None:
    influx = config.influx
    if influx is None:
        return None
    token = os.environ.get(influx.token_env) if influx.token_env else None
    return TimeSeriesFeed(influx, token, data_dir / "timeseries-outbox.sqlite3", clock)
