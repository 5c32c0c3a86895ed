"""What `safety-gateway demo` prints: a narration of alarms as they happen, in plain words,
with the exact commands to acknowledge and close them through the API."""

from __future__ import annotations

from typing import Any

from gateway.app.supervisor import Gateway
from gateway.notify.render import alarm_label, severity_label


class Narrator:
    def __init__(self, gw: Gateway, url: str) -> None:
        self._gw = gw
        self._url = url
        self._explained: set[tuple[str, str]] = set()

    def banner(self, scenario: str) -> str:
        return (
            f"\n  Safety gateway demo: scenario '{scenario}'\n"
            f"  Console:    {self._url}/   (值班台: open it in a browser, click to enable sound)\n"
            f"  Bureau:     {self._url}/bureau   (县局总览: every site, drill-down)\n"
            f"  Report:     {self._url}/api/reports/daily?format=html   (每日安全报告)\n"
            f"  API:        {self._url}/api/alarms?state=active,cleared\n"
            f"  API docs:   {self._url}/docs\n"
            f"  Health:     {self._url}/api/health\n"
            "  Watch below: a gas leak in the kitchen raises a critical alarm, the gateway\n"
            "  closes the gas valve, and the exact commands to acknowledge and close follow.\n"
            "  Ctrl-C stops.\n"
        )

    async def run(self) -> None:
        sub = self._gw.live.subscribe(None)
        try:
            while True:
                for message in await sub.next():
                    if message.get("kind") == "alarm" and message["alarm"]["change"] != "updated":
                        print(self.describe(message["alarm"]), flush=True)
        finally:
            self._gw.live.unsubscribe(sub)

    def describe(self, a: dict[str, Any]) -> str:
        kind = alarm_label(a["type"])
        sev = severity_label(a["severity"])
        value = f" value {a['value']}" if a.get("value") is not None else ""
        line = (
            f"[{a['updated_at'][11:19]}] {a['change']:<13} {sev} {kind} ({a['type']}) "
            f"at {a['location']} / {a['device']}{value} -> state {a['state']}"
            f"{', acked by ' + a['acked_by'] if a.get('acked_by') else ''}"
        )
        if a["change"] == "command_sent":
            line += (
                "\n           gas valve close command sent (shut-off happens before anything else)"
            )
        if a["change"] == "command_result":
            line += (
                "\n           the valve confirmed: gas supply is off."
                " It is never reopened automatically."
            )
        hints = []
        aid = a["id"]
        if a["state"] != "closed" and not a["acked"] and ("ack", aid) not in self._explained:
            self._explained.add(("ack", aid))
            hints.append(
                f"  acknowledge: curl -s -X POST {self._url}/api/alarms/{aid}/ack "
                '-H \'content-type: application/json\' -d \'{"by": "王值班", "note": "到场处置"}\''
            )
        if a["state"] == "cleared" and ("close", aid) not in self._explained:
            self._explained.add(("close", aid))
            hints.append(
                f"  close:       curl -s -X POST {self._url}/api/alarms/{aid}/close "
                "-H 'content-type: application/json' "
                '-d \'{"by": "王值班", "disposition": "real", "note": "关阀通风, 已排查"}\''
            )
        return "\n".join([line, *hints])
