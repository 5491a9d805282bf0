"""Custom reward: compute the env reward from the score dimensions.

``ScoreRewardWrapper`` turns ``info["scores"]`` (flattened: nested dimensions as dotted keys)
into the reward, with weights or a function. The Labs reward stays in ``info["labs_reward"]``.

The service warns that a dimension you do not reward can regress: keep logging all of them.

    python examples/custom_reward.py
"""

from labs_env import LabsEnv, ScoreRewardWrapper
from labs_env.policies.scripted import ScriptedPolicy

# 1. A weighted mean of chosen dimensions.
env = ScoreRewardWrapper(
    LabsEnv(collection="insurance-claims", scenario="delayed-claim-call"),
    weights={"D1_InformationGathering": 2.0, "rubrics.criteria.empathy": 1.0},
)
policy = ScriptedPolicy()
obs, info = env.reset(seed=0)
terminated = truncated = False
while not (terminated or truncated):
    obs, reward, terminated, truncated, info = env.step(policy(obs, env.unwrapped.context))
    print(
        f"turn {info['turn']}: shaped reward {reward:.3f}  (Labs reward {info['labs_reward']:.3f})"
    )
print("all dimensions at the end (watch the ones you do not reward):")
for name, value in sorted(info["scores"].items()):
    print(f"  {name:40s} {value:.2f}")
env.close()


# 2. Any function of the scores: here the weakest dimension, to push up the floor.
def weakest_dimension(scores, info):
    top_level = {k: v for k, v in scores.items() if "." not in k}
    return min(top_level.values()) if top_level else 0.0


env = ScoreRewardWrapper(
    LabsEnv(collection="insurance-claims", scenario="storm-roof-decision"), fn=weakest_dimension
)
obs, info = env.reset(seed=0)
terminated = truncated = False
while not (terminated or truncated):
    obs, reward, terminated, truncated, info = env.step(policy(obs, env.unwrapped.context))
print(f"weakest-dimension reward at the end: {reward:.3f} ({info.get('terminal_reason')})")
env.close()
