"""Client-area fixtures: most client tests run once per client flavour."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """``"sync"`` (:class:`~labs_env.LabsClient`) or ``"async"`` (``AsyncLabsClient``): pass it
    to :func:`tests.kit.scripted_http.make_client`."""
    return str(request.param)
