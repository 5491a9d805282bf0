"""Simulation fixtures: one simulator (the bundled scenarios) per test module."""

from __future__ import annotations

import pytest

from labs_env.server.simulation import Simulator


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator()
