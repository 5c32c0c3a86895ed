"""The TLS settings of the configuration (DESIGN section 10: MQTT and HTTP run over TLS in
deployment): the broker connection's (`mqtt.tls`) and the HTTP server's (`http.tls`).

Certificate files are checked to exist at load, so that `safety-gateway check` names a
missing file with its path instead of the first handshake failing at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path


ExistingFile = Annotated[Path, AfterValidator(_existing_file)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttTls(_Model):
    ca_file: ExistingFile | None = None  # None: the system's CA store
    # A client certificate, for a broker that asks for one (`require_certificate true`).
    cert_file: ExistingFile | None = None
    key_file: ExistingFile | None = None  # None: the key is in cert_file
    check_hostname: bool = True

    @model_validator(mode="after")
    def _key_with_cert(self) -> MqttTls:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file given without cert_file")
        return self


class HttpTls(_Model):
    cert: ExistingFile  # PEM: the server's certificate, then any intermediates
    key: ExistingFile
