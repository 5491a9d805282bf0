"""Record trajectories to JSONL, then load them back as typed records.

``TrajectoryRecorder`` appends each finished episode as one line, flushed and fsynced, so a
crash loses at most the episode in flight. ``read_trajectories`` loads the file (tolerating a
truncated last line) into ``TrajectoryRecord`` objects.

    python examples/record_and_reload.py [path.jsonl]
"""

import sys
import tempfile
from pathlib import Path

from labs_env import LabsEnv, TrajectoryRecorder, read_trajectories
from labs_env.policies.scripted import ScriptedPolicy

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "episodes.jsonl"

env = TrajectoryRecorder(
    LabsEnv(collection="insurance-claims", scenario=None), path, extra={"policy": "scripted"}
)
policy = ScriptedPolicy()
for episode in range(4):
    obs, info = env.reset(seed=0 if episode == 0 else None)  # seed once: the run is reproducible
    terminated = truncated = False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(policy(obs, env.unwrapped.context))
env.close()

records = read_trajectories(path)
print(f"{len(records)} episodes in {path}")
for record in records:
    print(
        f"  {record.episode_id}  {record.scenario:22s} turns {record.num_turns:2d}  "
        f"final {record.final_reward:.3f}  total {record.total_reward:.3f}  "
        f"{record.terminal_reason}  seed {record.seed}"
    )

usable = [r for r in records if r.ok]  # records with an infrastructure error are never rewards
best = max(usable, key=lambda r: r.final_reward or 0.0)
print(f"\nbest episode ({best.final_reward:.3f}), as chat messages for fine-tuning:")
for message in best.conversation():
    print(f"  {message['role']:9s} {message['content'][:90]}")
