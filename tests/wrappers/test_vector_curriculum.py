"""The reward-config curriculum on a LabsVectorEnv."""

from __future__ import annotations

from _server_kit import fake_server
from _vector_kit import ScriptedTransport, async_client, for_episode
from gymnasium.vector import AutoresetMode

from labs_env.envs import LabsVectorEnv
from labs_env.server import LocalTransport
from labs_env.wrappers import CurriculumPhase, VectorCurriculumWrapper

EASY = {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True}


def curriculum_venv(mode: AutoresetMode) -> VectorCurriculumWrapper:
    server, _ = fake_server()
    venv = LabsVectorEnv(
        2,
        collection="alpha",
        scenario="long",
        client=async_client(LocalTransport(server, sleep=False)),
        autoreset_mode=mode,
    )
    phases = [CurriculumPhase.make("easy", EASY, episodes=3), CurriculumPhase.make("full", None)]
    return VectorCurriculumWrapper(venv, phases)


def test_phases_advance_over_the_episodes_of_all_envs() -> None:
    venv = curriculum_venv(AutoresetMode.SAME_STEP)
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


def test_episodes_ended_by_errors_do_not_count() -> None:
    server, _ = fake_server()
    transport = ScriptedTransport(server)
    phases = [CurriculumPhase.make("easy", EASY, episodes=3), CurriculumPhase.make("full", None)]
    for mode in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        venv = VectorCurriculumWrapper(
            LabsVectorEnv(
                2,
                collection="alpha",
                scenario="long",
                client=async_client(transport),
                autoreset_mode=mode,
            ),
            phases,
        )
        _, infos = venv.reset(seed=0)
        transport.fail = for_episode(infos["episode_id"][0])
        _, _, _, truncated, _ = venv.step(["hi", "DONE"])
        assert truncated[0]  # env 0 failed, env 1 finished
        assert venv.episodes_total == 1
        transport.fail = lambda request: False
        venv.close()
