"""Server-area fixtures: raw HTTP on a server over the fake simulator (``fake_labs``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.kit.fake_simulator import FakeLabs
from tests.kit.wire import wire_client


@pytest.fixture
def http(fake_labs: FakeLabs) -> Iterator[httpx.Client]:
    """An ``httpx.Client`` with the demo key on ``fake_labs.server`` (in process)."""
    with wire_client(fake_labs.server) as client:
        yield client
