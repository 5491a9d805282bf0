"""Curriculum: train on discovery first, then a mix, then the full score.

The documented three-phase curriculum is one line (``CurriculumWrapper.documented``); here
each phase lasts a few episodes of the scripted baseline, mixing both scenarios of the
collection. The active phase is in ``info``.

    python examples/curriculum.py
"""

import sys

from labs_env import CurriculumWrapper, LabsEnv
from labs_env.policies.scripted import ScriptedPolicy

EPISODES_PER_PHASE = int(sys.argv[1]) if len(sys.argv) > 1 else 3

env = CurriculumWrapper.documented(
    LabsEnv(collection="insurance-claims", scenario=None),  # None: every scenario, drawn per reset
    episodes=(EPISODES_PER_PHASE, EPISODES_PER_PHASE),
    gate_check_every=2,  # every 2nd episode of a gate-skipping phase runs with the gate on
)
policy = ScriptedPolicy()
labs_env = env.unwrapped

for episode in range(3 * EPISODES_PER_PHASE):
    obs, info = env.reset(seed=0 if episode == 0 else None)  # seed once: the run is reproducible
    phase, config = info["curriculum_phase_name"], info["reward_config"]
    terminated = truncated = False
    while not (terminated or truncated):
        action = policy(obs, labs_env.context)
        obs, reward, terminated, truncated, info = env.step(action)
    weights = config["quality_weights"] if config else "default scoring"
    gate = "gate check" if info["curriculum_gate_check"] else ""
    print(
        f"episode {episode:2d}  phase {phase:9s}  {info['scenario']:22s} "
        f"final reward {reward:.3f}  weights {weights} {gate}"
    )
env.close()
