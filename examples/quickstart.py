"""Quickstart: one Labs episode, played by hand, as a Gymnasium environment.

Run it with no setup: without LABS_API_KEY the env plays the embedded local Labs server
(in process, offline). With a key it plays the real service (use your collection's slugs).

    python examples/quickstart.py
"""

import gymnasium as gym

import labs_env  # noqa: F401  (importing registers "Labs-v0")

env = gym.make(
    "labs_env:Labs-v0",
    collection="insurance-claims",
    scenario="storm-roof-decision",
    render_mode="ansi",
)

# The observation is the conversation: a tuple of chat messages (the persona is "user").
obs, info = env.reset(seed=0)
print("persona says:", obs[-1]["content"])
print("tools:", [(tool["id"], tool.get("options")) for tool in info["tools"]])

# An action is a string (the agent's message) ...
questions = [
    "I'm sorry about the damage. Could you give me your policy number?",
    "When did the storm damage happen, and when did your cover start?",
    "Do you have photos or a repair quote? Any previous claims?",
]
for question in questions:
    obs, reward, terminated, truncated, info = env.step(question)
    print(f"turn {info['turn']}: reward {reward:.3f}  persona: {obs[-1]['content']}")
    if terminated or truncated:
        break

# ... or a message with tool calls: name = the tool's id, input = its arguments.
if not (terminated or truncated):
    obs, reward, terminated, truncated, info = env.step(
        {
            "content": "Thank you. The damage is covered, so I am approving your claim.",
            "tool_calls": [{"name": "claim_status", "input": {"value": "approve"}}],
        }
    )
    print(f"decision: reward {reward:.3f}, ended: {info.get('terminal_reason')}")

print("\nscores of the last turn:")
for name, value in info["scores"].items():
    print(f"  {name:40s} {value:.2f}")

print("\n" + env.render())
env.close()
