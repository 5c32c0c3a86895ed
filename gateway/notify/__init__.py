"""Telling people about alarms: escalation, the channels, and what was sent.

- `policy`: who is told, how and when (pure; time is an argument).
- `worker`: committed alarm changes in, due sends out; owns no table itself.
- `sendlog`: the `escalation_sends` table; `maintenance`: the `maintenance` table.
- `sending`: one batch to its recipients, channel by channel, with retries.
- `retry`: the one retry-with-backoff helper (tenacity); `smtp`: the one SMTP sender.
- `channels`, `factory`, `render`, `base`: the adapters, built from the configuration, the
  texts they send and the interface they share.

Every adapter implements `base.Notifier`: one `send` is one attempt that never raises for
provider or network trouble; retries and fallback belong to the escalation engine.

May import `central`, `alarms`, `people` (the acknowledgement links SMS carry), `config`, `rules`.
"""

from gateway.notify.base import Message, MessageLine, Notifier, Recipient, SendResult

__all__ = ["Message", "MessageLine", "Notifier", "Recipient", "SendResult"]
