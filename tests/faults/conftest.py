"""The fault tests' gateways carry an admin token (tests.faults.rig.process_config)."""

from __future__ import annotations

import pytest

from tests.faults.rig import ADMIN_TOKEN


@pytest.fixture(autouse=True)
def admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTS_ADMIN", ADMIN_TOKEN)
