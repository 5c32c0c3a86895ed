"""Adapters built from the `notify.channels` configuration; secrets read from the environment.

`run` refuses to start when a named environment variable is missing (config.missing_secrets),
so here a missing secret is a programming error, not a user error.
"""

from __future__ import annotations

import os

import httpx

from gateway.config.schema import (
    AliyunSmsChannel,
    AliyunVoiceChannel,
    DingTalkChannel,
    NotifySection,
    SmtpChannel,
    TencentSmsChannel,
    WebhookChannel,
    WeComChannel,
)
from gateway.notify.base import Notifier
from gateway.notify.channels.aliyun import AliyunSms, AliyunVoice
from gateway.notify.channels.dingtalk import DingTalkRobot
from gateway.notify.channels.mail import SmtpMail
from gateway.notify.channels.tencent import TencentSms
from gateway.notify.channels.webhook import JsonWebhook
from gateway.notify.channels.wecom import WeComRobot
from gateway.notify.smtp import SmtpSender


class MissingSecret(RuntimeError):
    pass


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise MissingSecret(f"environment variable {name} is not set")
    return value


def _optional_env(name: str | None) -> str | None:
    return _env(name) if name else None


def build_notifiers(notify: NotifySection, client: httpx.AsyncClient) -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {}
    for ch in notify.channels:
        n: Notifier
        if isinstance(ch, AliyunSmsChannel):
            n = AliyunSms(
                ch.name, client, _env(ch.access_key_id_env), _env(ch.access_key_secret_env),
                ch.sign_name, ch.template_code, endpoint=ch.endpoint,
            )  # fmt: skip
        elif isinstance(ch, TencentSmsChannel):
            n = TencentSms(
                ch.name, client, _env(ch.secret_id_env), _env(ch.secret_key_env), ch.sdk_app_id,
                ch.sign_name, ch.template_id, region=ch.region, endpoint=ch.endpoint,
            )  # fmt: skip
        elif isinstance(ch, AliyunVoiceChannel):
            n = AliyunVoice(
                ch.name, client, _env(ch.access_key_id_env), _env(ch.access_key_secret_env),
                ch.called_show_number, ch.tts_code, endpoint=ch.endpoint,
            )  # fmt: skip
        elif isinstance(ch, DingTalkChannel):
            n = DingTalkRobot(ch.name, client, _env(ch.webhook_env), _optional_env(ch.secret_env))
        elif isinstance(ch, WeComChannel):
            n = WeComRobot(ch.name, client, _env(ch.webhook_env))
        elif isinstance(ch, WebhookChannel):
            n = JsonWebhook(ch.name, client, ch.url, _optional_env(ch.token_env))
        elif isinstance(ch, SmtpChannel):
            n = SmtpMail(
                ch.name, SmtpSender.for_channel(ch, _optional_env(ch.password_env), notify.timeout)
            )
        notifiers[ch.name] = n
    return notifiers
