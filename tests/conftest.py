"""Fixtures that several test areas share; an area's own fixtures are in its ``conftest.py``.

The suite is offline: every test (and every doctest in ``labs_env/``) runs without
``LABS_API_KEY`` and ``LABS_URL``, so a client made the default way talks to the embedded
server; a test that needs a key sets one with ``monkeypatch``. Fakes that a test constructs
itself, with arguments of its own (scripted transports, the fake simulator, constants), are
plain modules in :mod:`tests.kit`.

Shared fixtures:

- ``labs_server``: a fresh in-process :class:`~labs_env.server.LabsServer` (the real
  simulator); ``local_client``: a :class:`~labs_env.LabsClient` on it.
- ``lost_first_turn_server``: a fresh server that commits the first turn and loses its
  response.
- ``fake_labs``: a server over the predictable fake simulator (:mod:`tests.kit.fake_simulator`);
  ``fake_venv``: vector envs on it.
- ``fake_chat``: the fake OpenAI chat-completions server on 127.0.0.1
  (:mod:`tests.kit.chat_server`).
- ``record_episodes``: plays a policy through ``TrajectoryRecorder(LabsEnv(...))`` and reads
  the records back.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labs_env import LabsClient, LabsEnv, TrajectoryRecord, TrajectoryRecorder, read_trajectories
from labs_env.connect import make_local_client
from labs_env.envs import LabsVectorEnv
from labs_env.rollout.policy import call_policy
from labs_env.server import FaultConfig, LabsServer, LocalTransport, ServerConfig
from tests.kit.chat_server import FakeChatServer, serve_fake_chat
from tests.kit.fake_simulator import FakeLabs, make_fake_labs
from tests.kit.transports import async_client

RecordEpisodes = Callable[..., list[TrajectoryRecord]]


#: Proxy settings of the machine: tests talk to 127.0.0.1 directly, whatever the shell says.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class _Offline:
    """Keeps the Labs key and URL, and the machine's proxy settings, out of every test's
    environment.

    Registered as a plugin (not defined as a fixture of this conftest) so that its autouse
    fixture also reaches the doctests collected from ``labs_env/``: a conftest's own fixtures
    reach only the tests below its folder.
    """

    @pytest.fixture(autouse=True)
    def _no_labs_service(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("LABS_API_KEY", raising=False)
        monkeypatch.delenv("LABS_URL", raising=False)
        for name in PROXY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.lower(), raising=False)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Offline(), "labs-env-offline")


@pytest.fixture
def labs_server() -> LabsServer:
    """A fresh in-process server on the real simulator."""
    return LabsServer()


@pytest.fixture
def local_client(labs_server: LabsServer) -> Iterator[LabsClient]:
    """A sync client on ``labs_server`` (closed after the test)."""
    with make_local_client(server=labs_server) as client:
        yield client


@pytest.fixture
def lost_first_turn_server() -> LabsServer:
    """A server that commits the first submitted turn and loses its response, then behaves.

    The fault injector makes one seeded draw per affected request; pick a seed whose first
    draw falls in the lost-response band and whose next draws do not.
    """
    for seed in range(1000):
        rng = random.Random(seed)
        if rng.random() < 0.5 and all(rng.random() >= 0.5 for _ in range(3)):
            faults = FaultConfig(
                lost_response_rate=0.5, endpoints=frozenset({"submit_turn"}), seed=seed
            )
            return LabsServer(ServerConfig(faults=faults))
    raise AssertionError("no suitable seed")  # pragma: no cover


@pytest.fixture
def fake_labs() -> FakeLabs:
    """A server (default config) over a fresh fake simulator, and that simulator."""
    return make_fake_labs()


@pytest.fixture
def fake_venv(fake_labs: FakeLabs) -> Callable[..., LabsVectorEnv]:
    """``fake_venv(num_envs, **kwargs)``: a ``LabsVectorEnv`` on ``fake_labs.server``, playing
    ``alpha/long`` unless told otherwise (``alpha/short`` ends after 2 turns; an action
    containing ``DONE`` ends any episode)."""

    def make(num_envs: int, **kwargs: Any) -> LabsVectorEnv:
        kwargs.setdefault("collection", "alpha")
        kwargs.setdefault("scenario", "long")
        client = async_client(LocalTransport(fake_labs.server, sleep=False))
        return LabsVectorEnv(num_envs, client=client, **kwargs)

    return make


@pytest.fixture
def fake_chat() -> Iterator[FakeChatServer]:
    """A running fake chat-completions server; script it with ``reply`` / ``fail``."""
    with serve_fake_chat() as fake:
        yield fake


@pytest.fixture
def record_episodes(local_client: LabsClient) -> RecordEpisodes:
    """``record_episodes(policy, path, collection=..., scenario=None, episodes=...)`` plays
    one episode per seed ``0 .. episodes - 1`` through ``TrajectoryRecorder(LabsEnv(...))`` on
    ``local_client`` and returns the records read back from ``path``."""

    def record(
        policy: Any, path: Path, *, collection: str, scenario: str | None = None, episodes: int
    ) -> list[TrajectoryRecord]:
        env = TrajectoryRecorder(
            LabsEnv(collection, scenario, client=local_client), path, fsync=False
        )
        try:
            for seed in range(episodes):
                obs, _ = env.reset(seed=seed)
                done = False
                while not done:
                    action = call_policy(policy, obs, env.unwrapped.context)  # type: ignore[attr-defined]
                    obs, _, terminated, truncated, _ = env.step(action)
                    done = terminated or truncated
        finally:
            env.close()
        return read_trajectories(path)

    return record
