"""The Python floor: a bare paho-mqtt subscriber that decodes each payload with orjson.

    python bench/paho_floor.py PORT QOS COUNT TOPIC

Prints `ready` once subscribed, then, after COUNT messages, `done <count> <monotonic time of
the last message>`; exits. Run by bench/burst.py in its own process.
"""

from __future__ import annotations

import sys
import time

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main() -> None:
    port, qos, count, topic = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    got = 0
    last = 0.0

    def on_message(client: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        nonlocal got, last
        orjson.loads(m.payload)
        got += 1
        if got >= count:
            last = time.monotonic()
            client.disconnect()

    def on_subscribe(*_: object) -> None:
        print("ready", flush=True)

    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="paho-floor")
    c.on_message = on_message
    c.on_subscribe = on_subscribe
    c.connect("127.0.0.1", port)
    c.subscribe(topic, qos=qos)
    c.loop_forever()
    print(f"done {got} {last:.6f}", flush=True)


if __name__ == "__main__":
    main()
