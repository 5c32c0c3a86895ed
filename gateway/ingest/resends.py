"""Messages a device sent again: recognised by their bytes before the rules, counted.

A device publishing at QoS 1 sends a message again when it never saw the broker's PUBACK
(the broker was killed or the connection cut while the message was in flight). The broker
takes the copy as a new message: it reaches the gateway with a packet id of its own and
without DUP, so neither the MQTT link's session window nor `gateway.ingest.redelivery`
knows it. Only the bytes do. One `Resends` per device topic (kept in the router's route):

- *With a device timestamp* (`ts` the codec believed): a payload identical to one of the
  last `STAMPED` such payloads of the topic is the same message (same device, channel,
  time and content), however long ago it came: dropped. A different payload is never
  dropped, whatever its `ts`.
- *Without one*, identical bytes are also what a device sends when nothing changed, so
  only a payload identical to the topic's previous one is dropped, and only within
  `window_s` of the first copy taken (`mqtt.resend_window`; 0, the default, takes every
  copy). A dropped copy does not extend the window: a device that repeats the same payload
  every second is still taken every `window_s`, so it is never starved and never goes
  offline. Comparing with the previous payload only, never an older one, means a drop
  never changes the state the rules end in: `open` 1, 0, 1 (or `fault`, `fault_cleared`,
  `fault`) within the window are all taken. The price: two genuine presses of a button that
  sends no `ts` within the window count as one (harmless: the first has raised the alarm,
  the second would only count it), and a device without `ts` re-sending several different
  messages has them taken twice (a short replay ending in its newest state, as before).

Memory: at most `STAMPED` payloads (no copies: the messages as they came) and one more per
topic, for the topics the router keeps routes for (bounded there). Cost on the hot path: one
dict lookup and store (about 0.1 µs, see the README).
"""

from __future__ import annotations

STAMPED = 32  # payloads with a device time remembered per topic


class Resends:
    __slots__ = ("_at", "_previous", "_stamped")

    def __init__(self) -> None:
        self._stamped: dict[bytes, None] = {}  # insertion order: the oldest goes first
        self._previous = b""  # the last payload without a device time taken
        self._at = 0.0  # when its first copy was taken (monotonic)

    def again(self, payload: bytes, stamped: bool, mono: float, window_s: float) -> str | None:
        """None when `payload` is taken (and remembered); else why it is a copy. `stamped`:
        it carries a device time the codec believed; `mono`: the monotonic clock now."""
        if stamped:
            seen = self._stamped
            if payload in seen:
                return "a device sent again a message taken before (same ts and bytes)"
            if len(seen) >= STAMPED:
                del seen[next(iter(seen))]
            seen[payload] = None
            self._previous = b""  # the previous message is no longer that one
            return None
        if payload == self._previous and mono - self._at < window_s:
            return (
                f"a device sent again its previous message {mono - self._at:.2f} s after "
                f"the first copy (same bytes, no ts)"
            )
        self._previous = payload
        self._at = mono
        return None
