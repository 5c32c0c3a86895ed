"""`mqtt.url: mqtts://...`, `mqtt.tls` and `http.tls`: checked at load, every problem with its
path (a certificate file that is not there is named, with its path, by `safety-gateway
check`), and what the broker connection is then given."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from drivers.mqtt import TlsSettings
from gateway.app.settings import mqtt_settings
from gateway.config.loading import parse_config
from tests.support.config import base, problems_of


def connection_tls(data: dict[str, object]) -> TlsSettings | None:
    return mqtt_settings(parse_config(data), None, None, True, frozenset()).tls


def test_mqtts_defaults_to_port_8883_the_system_cas_and_the_hostname_checked() -> None:
    data = base()
    data["mqtt"] = {"url": "mqtts://broker.example.gov.cn"}
    config = parse_config(data)
    assert config.mqtt is not None
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.secure) == (
        "broker.example.gov.cn",
        8883,
        True,
    )
    assert connection_tls(data) == TlsSettings(ca_file=None, check_hostname=True)


def test_plain_mqtt_has_no_tls() -> None:
    data = base()
    data["mqtt"] = {"url": "mqtt://127.0.0.1:1884"}
    assert connection_tls(data) is None


def test_tls_files_are_handed_to_the_connection(tmp_path: Path) -> None:
    for name in ("ca.crt", "gw.crt", "gw.key"):
        (tmp_path / name).write_text("PEM")
    data = base()
    data["mqtt"] = {
        "url": "mqtts://broker:8884",
        "tls": {
            "ca_file": str(tmp_path / "ca.crt"),
            "cert_file": str(tmp_path / "gw.crt"),
            "key_file": str(tmp_path / "gw.key"),
            "check_hostname": False,
        },
    }
    assert connection_tls(data) == TlsSettings(
        str(tmp_path / "ca.crt"), str(tmp_path / "gw.crt"), str(tmp_path / "gw.key"), False
    )


def test_missing_certificate_files_are_named_with_their_paths(tmp_path: Path) -> None:
    data = base()
    data["mqtt"] = {"url": "mqtts://broker", "tls": {"ca_file": str(tmp_path / "nope.crt")}}
    data["http"] = {"tls": {"cert": str(tmp_path / "h.crt"), "key": str(tmp_path / "h.key")}}
    assert problems_of(data) == [
        f"http.tls.cert: no such file: {tmp_path / 'h.crt'}",
        f"http.tls.key: no such file: {tmp_path / 'h.key'}",
        f"mqtt.tls.ca_file: no such file: {tmp_path / 'nope.crt'}",
    ]


def test_tls_settings_with_a_plain_url_are_refused(tmp_path: Path) -> None:
    """They would look protected while the password crosses the network in clear."""
    data = base()
    data["mqtt"] = {"url": "mqtt://broker:1883", "tls": {}}
    assert problems_of(data) == ["mqtt: mqtt.tls is given but mqtt.url is not mqtts://"]


def test_a_key_without_its_certificate_is_refused(tmp_path: Path) -> None:
    (tmp_path / "gw.key").write_text("PEM")
    data = base()
    data["mqtt"] = {"url": "mqtts://broker", "tls": {"key_file": str(tmp_path / "gw.key")}}
    assert problems_of(data) == ["mqtt.tls: key_file given without cert_file"]


def test_check_names_a_missing_ca_file(
    tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    data = base()
    data["mqtt"] = {"url": "mqtts://broker", "tls": {"ca_file": str(tmp_path / "ca.crt")}}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run_cli("check", "-c", str(path), timeout=60)
    assert result.returncode != 0
    assert f"mqtt.tls.ca_file: no such file: {tmp_path / 'ca.crt'}" in result.stderr
    assert "Traceback" not in result.stderr
