"""The native JSON codec: topics."""

from __future__ import annotations

import pytest

from drivers.codec import (
    Channel,
    RejectReason,
    Route,
    TopicParser,
)
from rules.model import DeviceRef
from tests.support.codec import REF, rejected


# ------------------------------------------------------------------ topics
@pytest.mark.parametrize(
    ("topic", "channel"),
    [
        ("safety/xingfu/gas-kitchen/telemetry", Channel.TELEMETRY),
        ("safety/xingfu/gas-kitchen/event", Channel.EVENT),
        ("safety/xingfu/gas-kitchen/status", Channel.STATUS),
        ("safety/xingfu/gas-kitchen/cmd/ack", Channel.CMD_ACK),
    ],
)
def test_topic_parser_channels(topic: str, channel: Channel) -> None:
    assert TopicParser("safety").parse(topic) == Route(REF, channel)


def test_topic_parser_site_alarms_topic() -> None:
    """A gateway's own alarm topic, which a central gateway mirrors for sites at the edge."""
    parser = TopicParser("safety")
    assert parser.parse("safety/xingfu/alarms") == Route(DeviceRef("xingfu", ""), Channel.ALARMS)
    assert parser.alarm_subscription("xingfu") == "safety/xingfu/alarms"
    assert "safety/xingfu/alarms" not in parser.subscriptions  # only for observed sites
    assert parser.parse("safety/xingfu/commands") == Route(
        DeviceRef("xingfu", ""), Channel.COMMANDS
    )
    assert parser.commands_subscription("xingfu") == "safety/xingfu/commands"
    # a gateway's presence, and the edge broker's bridge state
    assert parser.parse("safety/gateways/gw-1") == Route(DeviceRef("", "gw-1"), Channel.PRESENCE)
    assert parser.presence_topic("gw-1") == "safety/gateways/gw-1"
    assert parser.presence_subscription() == "safety/gateways/+"
    assert parser.parse("safety/xingfu/bridge/state") == Route(
        DeviceRef("xingfu", ""), Channel.UPLINK
    )
    assert parser.uplink_subscription("xingfu") == "safety/xingfu/bridge/state"


def test_topic_parser_multi_level_prefix() -> None:
    parser = TopicParser("/zy/safety/")
    assert parser.parse("zy/safety/xingfu/gas-kitchen/event") == Route(REF, Channel.EVENT)
    assert parser.subscriptions == [
        "zy/safety/+/+/telemetry",
        "zy/safety/+/+/event",
        "zy/safety/+/+/status",
        "zy/safety/+/+/cmd/ack",
    ]


@pytest.mark.parametrize(
    "topic",
    [
        "other/xingfu/gas-kitchen/telemetry",  # other prefix
        "safetyx/xingfu/gas-kitchen/telemetry",  # prefix is a whole level
        "Safety/xingfu/gas-kitchen/telemetry",  # case matters in MQTT
        "xingfu/gas-kitchen/telemetry",  # no prefix
        "safety/xingfu/gas-kitchen/cmd",  # the gateway's own command topic
        "safety/xingfu/gas-kitchen/alarms",
        "safety//alarms",  # empty site level
        "safety//commands",
        "safety/gateways/",
        "safety/gateways/gw-1/extra",
        "safety//bridge/state",
        "safety/xingfu/bridge/status/x",
        "safety/xingfu/gas-kitchen/commands",
        "safety/xingfu/gas-kitchen/telemetry/extra",
        "safety/xingfu/gas-kitchen/cmd/ack/extra",
        "safety/xingfu/gas-kitchen/cmd/nack",
        "safety/xingfu/gas-kitchen/Telemetry",
        "safety/xingfu/gas-kitchen",
        "safety/xingfu/telemetry",
        "safety/a/xingfu/gas-kitchen/telemetry",
        "safety//gas-kitchen/telemetry",  # empty site level
        "safety/xingfu//telemetry",  # empty device level
        "safety//cmd/ack",
        "safety/",
        "safety",
        "",
    ],
)
def test_topic_parser_rejects_other_topics(topic: str) -> None:
    err = rejected(TopicParser("safety").parse, topic)
    assert err.reason is RejectReason.UNKNOWN_TOPIC
