"""Notification channel adapters: SMS, voice, chat robots, webhook and mail.

Every adapter implements `base.Notifier`: one `send` is one attempt that never raises for
provider or network trouble; retries and fallback belong to the escalation engine.
"""

from gateway.notify.base import Message, MessageLine, Notifier, Recipient, SendResult

__all__ = ["Message", "MessageLine", "Notifier", "Recipient", "SendResult"]
