"""The reward-config curriculum on a LabsVectorEnv."""

from __future__ import annotations

from collections.abc import Callable

from gymnasium.vector import AutoresetMode

from labs_env.envs import LabsVectorEnv
from labs_env.wrappers import CurriculumPhase, VectorCurriculumWrapper
from tests.kit.fake_simulator import FakeLabs
from tests.kit.transports import ScriptedTransport, async_client, for_episode

EASY = {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True}
#: Three episodes (across all envs) of the easy phase, then the full reward.
PHASES = [CurriculumPhase.make("easy", EASY, episodes=3), CurriculumPhase.make("full", None)]


def test_phases_advance_over_the_episodes_of_all_envs(
    fake_venv: Callable[..., LabsVectorEnv],
) -> None:
    venv = VectorCurriculumWrapper(fake_venv(2, autoreset_mode=AutoresetMode.SAME_STEP), PHASES)
    _, infos = venv.reset(seed=0)
    assert infos["curriculum_phase"].tolist() == [0, 0]
    assert infos["reward_config"][0]["quality_weights"] == {"discovery": 1.0}
    venv.step(["DONE", "DONE"])  # episodes 1 and 2 end
    assert venv.episodes_total == 2 and venv.phase.name == "easy"
    _, _, _, _, infos = venv.step(["DONE", "hi"])  # the third: phase 2 from env 0's next one
    assert venv.phase.name == "full"
    assert infos["curriculum_phase"].tolist() == [1, 0]
    configs = venv.unwrapped.reward_configs()
    assert configs[0] is None and configs[1] is not None
    _, _, _, _, infos = venv.step(["hi", "hi"])
    assert infos["reward_config"][0] is None  # env 0's new episode scores by default
    assert infos["reward_config"][1]["quality_weights"] == {"discovery": 1.0}  # still easy
    venv.close()


def test_episodes_ended_by_errors_do_not_count(fake_labs: FakeLabs) -> None:
    transport = ScriptedTransport(fake_labs.server)
    for mode in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        venv = VectorCurriculumWrapper(
            LabsVectorEnv(
                2,
                collection="alpha",
                scenario="long",
                client=async_client(transport),
                autoreset_mode=mode,
            ),
            PHASES,
        )
        _, infos = venv.reset(seed=0)
        transport.fail = for_episode(infos["episode_id"][0])
        _, _, _, truncated, _ = venv.step(["hi", "DONE"])
        assert truncated[0]  # env 0 failed, env 1 finished
        assert venv.episodes_total == 1
        transport.fail = lambda request: False
        venv.close()
