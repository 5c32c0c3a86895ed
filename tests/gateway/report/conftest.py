"""The report tests' store (holding the scenario) and configuration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.alarms.store import AlarmStore
from gateway.config.loading import parse_config
from gateway.config.schema import GatewayConfig
from tests.support.report import Scenario, config_data, populate


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlarmStore]:
    st = AlarmStore(tmp_path / "data" / "alarms.sqlite3")
    await st.open()
    writer = asyncio.create_task(st.run_writer())
    try:
        populate(Scenario(st))
        assert await st.flush(5)
        yield st
    finally:
        st.stop()
        await writer
        await st.close()


@pytest.fixture
def config(tmp_path: Path) -> GatewayConfig:
    return parse_config(config_data(tmp_path / "data"))
