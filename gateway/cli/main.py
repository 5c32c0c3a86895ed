"""`safety-gateway`: check | run | reload | simulate | report | demo | backup | restore | user."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from drivers.mqtt.broker import EmbeddedBroker, free_port
from gateway.app.systemd import SystemdNotifier
from gateway.cli import audit_cmd, users
from gateway.cli.configs import load_or_report
from gateway.config.checks import missing_secrets
from gateway.config.loading import parse_config
from gateway.config.schema import GatewayConfig
from gateway.http.server import HttpServer
from gateway.storage import lock as datadir_lock
from gateway.storage.backup import BackupError, backup_all, restore
from gateway.storage.migrate import too_new
from gateway.storage.schemas import DATABASES

log = logging.getLogger("safety-gateway")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("aiomqtt", "amqtt", "transitions", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pymodbus logs every timeout as an error; the poller logs state changes once instead.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    handler = {
        "check": cmd_check,
        "run": cmd_run,
        "reload": cmd_reload,
        "simulate": cmd_simulate,
        "demo": cmd_demo,
        "report": cmd_report,
        "backup": cmd_backup,
        "restore": cmd_restore,
        "user": cmd_user,
        "audit": audit_cmd.cmd_audit,
    }
    return int(handler[args.command](args))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safety-gateway", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="validate a configuration file; exit 2 if invalid")
    c.add_argument("-c", "--config", type=Path, required=True)

    r = sub.add_parser("run", help="run the gateway and its API")
    r.add_argument("-c", "--config", type=Path, required=True)

    rl = sub.add_parser(
        "reload",
        help="check a configuration file and have the running gateway read it again (SIGHUP); "
        "exit 2 if invalid, 1 if no gateway runs with its data_dir",
    )
    rl.add_argument("-c", "--config", type=Path, required=True)

    s = sub.add_parser("simulate", help="simulate a site's MQTT devices running a scenario")
    s.add_argument("-c", "--config", type=Path, required=True)
    s.add_argument("--scenario", required=True, help="scenario name (see --list)")
    s.add_argument("--site", help="site id (default: the first site)")
    s.add_argument("--device", help="the device the scenario acts on (default: the first fit)")
    s.add_argument("--broker", help="host:port (default: the config's mqtt.url)")
    s.add_argument("--interval", type=float, default=5.0, help="telemetry interval, seconds")
    s.add_argument("--speed", type=float, default=1.0, help="run the story this many times faster")
    s.add_argument("--linger", type=float, default=None, help="seconds to keep reporting after")

    rep = sub.add_parser("report", help="reports")
    rep_sub = rep.add_subparsers(dest="report", required=True)
    daily = rep_sub.add_parser("daily", help="write the daily safety report (JSON, HTML, XLSX)")
    daily.add_argument("-c", "--config", type=Path, required=True)
    daily.add_argument(
        "--date", required=True, help="YYYY-MM-DD: the day whose report time ends it"
    )
    daily.add_argument("--site", help="one site (default: the county report of every site)")
    daily.add_argument("--out", type=Path, default=Path("."), help="directory for the files")

    b = sub.add_parser("backup", help="back up every database now (as the daily job does)")
    b.add_argument("-c", "--config", type=Path, required=True)

    rs = sub.add_parser("restore", help="put a backup in place of its database (gateway stopped)")
    rs.add_argument("-c", "--config", type=Path, required=True)
    rs.add_argument("backup", type=Path, help="a file made by backup: <database>-<time>.sqlite3")

    users.add_parser(sub)
    audit_cmd.add_parser(sub)

    d = sub.add_parser("demo", help="embedded broker + demo site + gateway + simulator")
    d.add_argument("--port", type=int, default=8080, help="API port (a free one if busy)")
    d.add_argument("--scenario", default="gas_leak")
    d.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    d.add_argument("--data-dir", type=Path, default=None)
    return p


# ---------------------------------------------------------------------- check
def cmd_check(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_INVALID
    for problem in missing_secrets(config):
        print(f"warning: {problem}", file=sys.stderr)
    if _written_by_a_newer_gateway(Path(config.gateway.data_dir)):
        return EXIT_FAILED
    devices = sum(len(s.devices) for s in config.sites)
    print(f"{args.config}: valid ({len(config.sites)} sites, {devices} devices)")
    return EXIT_OK


def _written_by_a_newer_gateway(data_dir: Path) -> bool:
    """Says so on stderr, one line per database, naming both schema versions."""
    refused = too_new(data_dir, DATABASES)
    for newer in refused:
        print(newer, file=sys.stderr)
    return bool(refused)


# ------------------------------------------------------------------------ run
def cmd_run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_INVALID
    secrets = missing_secrets(config)
    if secrets:
        for problem in secrets:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    data_dir = Path(config.gateway.data_dir)
    # Before anything starts: a database written by a newer gateway is not to be touched.
    if _written_by_a_newer_gateway(data_dir):
        return EXIT_FAILED
    try:
        # Held while the gateway runs: `restore` refuses to pull files from under it.
        with datadir_lock.hold(data_dir):
            return asyncio.run(_run(config, args.config.resolve()))
    except datadir_lock.DataDirBusy as exc:
        print(f"{exc}: not starting a second one", file=sys.stderr)
        return EXIT_FAILED


# --------------------------------------------------------------------- reload
def cmd_reload(args: argparse.Namespace) -> int:
    """Check the file here (its errors on stderr, as `check`), then SIGHUP the gateway that
    runs with its data_dir (the holder of its lock, `gateway.storage.lock`). The gateway
    checks the file again and keeps its running configuration if that fails; the outcome
    is in its log and `/api/health` (`config.last_reload`)."""
    config = load_or_report(args.config)
    if config is None:
        return EXIT_INVALID
    for problem in missing_secrets(config):
        print(f"warning: {problem}", file=sys.stderr)
    data_dir = Path(config.gateway.data_dir)
    pid = datadir_lock.holder(data_dir)
    if pid is None:
        print(f"no gateway runs with data_dir {data_dir} (nobody holds its lock)", file=sys.stderr)
        return EXIT_FAILED
    os.kill(pid, signal.SIGHUP)
    print(f"{args.config}: valid; gateway {pid} asked to reload (see its log or /api/health)")
    return EXIT_OK


def _tune_interpreter() -> None:
    """For a process that ingests bursts on one thread while others wait for the interpreter.

    - Threads (the SQLite writers, the time-series writer) get the interpreter within 1 ms
      rather than 5 ms while ingestion runs: each database round trip of an alarm waited
      for that (bench/burst.py).
    - What start-up built (configuration, inventory, engine state) lives as long as the
      process: frozen out of the garbage collector's full passes, which otherwise scan all
      of it and paused the loop for over 100 ms with a few thousand devices.
    """
    sys.setswitchinterval(0.001)
    gc.collect()
    gc.freeze()
    log.info(
        "interpreter tuned: %d start-up objects frozen out of collections", gc.get_freeze_count()
    )


async def _run(config: GatewayConfig, path: Path) -> int:
    from gateway.http.app import build_app

    systemd = SystemdNotifier.from_env()
    async with _broker_for(config) as (host, port):
        # amqtt mishandles manual acknowledgement (see MqttSettings.manual_acks).
        app = build_app(
            config,
            on_started=_tune_interpreter,
            mqtt_host=host,
            mqtt_port=port,
            durable_acks=config.mqtt is not None,
            systemd=systemd,
            config_path=path,
        )
        # A failed start (e.g. a store that cannot be opened) makes uvicorn log it and exit
        # with status 3 (SystemExit); the gateway has released its threads by then, so the
        # process ends. READY=1 only once the port listens (systemd `Type=notify`).
        server = HttpServer(
            app,
            config.http.host,
            config.http.port,
            lifespan="on",
            on_ready=lambda: systemd.notify("READY=1"),
            tls=config.http.tls,
            trusted_proxies=config.http.trusted_proxies,
        )
        await server.serve()
    return EXIT_OK


@contextlib.asynccontextmanager
async def _broker_for(config: GatewayConfig) -> AsyncIterator[tuple[str, int]]:
    if config.mqtt is not None:
        yield config.mqtt.host, config.mqtt.port
        return
    async with EmbeddedBroker() as broker:
        yield broker.host, broker.port


# ------------------------------------------------------------------- simulate
def cmd_simulate(args: argparse.Namespace) -> int:
    from simulator import BrokerAddress, ScenarioError, run_scenario, site_from_config

    config = load_or_report(args.config)
    if config is None:
        return EXIT_INVALID
    broker: BrokerAddress | None = None
    if args.broker:
        host, _, port = args.broker.rpartition(":")
        broker = BrokerAddress(host or "127.0.0.1", int(port), config.topic_prefix)
    elif config.mqtt is not None:
        broker = BrokerAddress(config.mqtt.host, config.mqtt.port, config.topic_prefix)
    try:
        site = site_from_config(config, broker, args.site, args.interval, args.speed)
        if args.device is not None and args.device not in site.types:
            raise ScenarioError(f"no device {args.device!r} in site {site.site}")
        site.focus = args.device
        asyncio.run(run_scenario(site, args.scenario, args.linger))
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        pass
    return EXIT_OK


# --------------------------------------------------------------------- report
def cmd_report(args: argparse.Namespace) -> int:
    from gateway.report import PeriodNotStarted, UnknownSite, write_report_files
    from gateway.report.period import FIRST_DAY, LAST_DAY, day_in_range

    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        print(f"--date: not a date: {args.date!r} (use YYYY-MM-DD)", file=sys.stderr)
        return EXIT_INVALID
    if not day_in_range(day):
        print(f"--date: out of range ({FIRST_DAY} to {LAST_DAY}): {args.date}", file=sys.stderr)
        return EXIT_INVALID
    if load_or_report(args.config) is None:
        return EXIT_INVALID
    try:
        paths = asyncio.run(write_report_files(args.config, day, args.out, args.site))
    except FileNotFoundError as exc:
        print(f"no alarm store yet: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (UnknownSite, PeriodNotStarted) as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED
    for path in paths:
        print(path)
    return EXIT_OK


# ------------------------------------------------------------------------ user
def cmd_user(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_INVALID
    return users.cmd_user(args, config)


# ------------------------------------------------------------- backup, restore
def cmd_backup(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_INVALID
    data_dir = Path(config.gateway.data_dir)
    storage = config.storage
    try:
        made = backup_all(data_dir, storage.backups_in(data_dir), storage.backup_keep, time.time())
    except (BackupError, OSError) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not made:
        print(f"no database in {data_dir} to back up", file=sys.stderr)
        return EXIT_FAILED
    for b in made:
        print(f"{b.path} ({b.size} bytes, schema version {b.version}, quick_check ok)")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_INVALID
    data_dir = Path(config.gateway.data_dir)
    if not args.backup.is_file():
        print(f"{args.backup}: no such file", file=sys.stderr)
        return EXIT_INVALID
    try:
        with datadir_lock.hold(data_dir):
            target, kept = restore(data_dir, args.backup, time.time())
    except datadir_lock.DataDirBusy as exc:
        print(f"{exc}: stop it first (systemctl stop safety-gateway)", file=sys.stderr)
        return EXIT_FAILED
    except (BackupError, OSError) as exc:
        print(f"not restored: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.backup} restored as {target}")
    if kept is not None:
        print(f"the file it replaced is kept as {kept}")
    return EXIT_OK


# ----------------------------------------------------------------------- demo
def demo_config(data_dir: Path, port: int) -> GatewayConfig:
    text = resources.files("gateway.cli").joinpath("demo_site.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    data["gateway"]["data_dir"] = str(data_dir)
    data["http"]["port"] = port
    return parse_config(data)


def cmd_demo(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="safety-gateway-demo-"))
    port = args.port if _port_free(args.port) else free_port()
    config = demo_config(data_dir, port)
    try:
        return asyncio.run(_demo(config, args.scenario, args.duration))
    except KeyboardInterrupt:
        return EXIT_OK


async def _demo(config: GatewayConfig, scenario: str, duration: float | None) -> int:
    from gateway.app.supervisor import Gateway
    from gateway.cli.demo import Narrator
    from gateway.http.app import create_api
    from simulator import BrokerAddress, run_scenario, site_from_config

    async with (
        EmbeddedBroker() as broker,
        Gateway(config, mqtt_host=broker.host, mqtt_port=broker.port, durable_acks=False) as gw,
    ):
        url = f"http://{config.http.host}:{config.http.port}"
        server = HttpServer(create_api(gw), config.http.host, config.http.port, lifespan="off")
        narrator = Narrator(gw, url)
        site = site_from_config(
            config, BrokerAddress(broker.host, broker.port, config.topic_prefix), interval_s=2.0
        )
        print(narrator.banner(scenario), flush=True)
        async with asyncio.TaskGroup() as tg:
            serve = tg.create_task(server.serve(), name="http")
            helpers = [
                tg.create_task(narrator.run(), name="narrator"),
                tg.create_task(run_scenario(site, scenario), name="simulator"),
            ]
            if duration is not None:
                await asyncio.sleep(duration)
                server.should_exit = True
            await serve  # returns on Ctrl-C (uvicorn handles the signal) or after --duration
            for task in helpers:
                task.cancel()
    return EXIT_OK


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
