"""The episode runtime, below the env interfaces: one episode's state and planning, the policy
protocol, the async episode driver, independent-episode collection, and trajectory records.

- :mod:`~labs_env.rollout.episode` — one episode without I/O (actions in, transitions out);
- :mod:`~labs_env.rollout.planning` — what the next episode is (scenario, seed, configs);
- :mod:`~labs_env.rollout.actions` — an agent's action as the assistant message to send;
- :mod:`~labs_env.rollout.policy` — the policy protocol, :class:`EpisodeContext`, calling;
- :mod:`~labs_env.rollout.driver` — episode I/O over a client (create, submit, terminate);
- :mod:`~labs_env.rollout.specs` — episodes named by spec, with stable keys for resuming;
- :mod:`~labs_env.rollout.collection` — :func:`collect`: many episodes at their own pace;
- :mod:`~labs_env.rollout.time_limits` — ``collect``'s per-policy-call and per-episode limits;
- :mod:`~labs_env.rollout.recording` / :mod:`~labs_env.rollout.trajectory` — records, JSONL;
- :mod:`~labs_env.rollout.strict_json` — strict JSON for every file the library writes;
- :mod:`~labs_env.rollout.event_loop` — running it all from sync code.
"""

from labs_env.rollout.collection import (
    CollectProgress,
    collect,
    collect_groups,
    collect_sync,
)
from labs_env.rollout.driver import EpisodeDriver
from labs_env.rollout.episode import Episode, History, Transition
from labs_env.rollout.policy import (
    Action,
    EpisodeContext,
    Policy,
    acall_policy,
    aclose_policy,
    call_policy,
    is_async_policy,
)
from labs_env.rollout.specs import EpisodeSpec, completed_keys, episode_specs
from labs_env.rollout.time_limits import EpisodeTimeoutError, PolicyTimeoutError, TimeLimitError
from labs_env.rollout.trajectory import (
    JsonlWriter,
    TrajectoryRecord,
    TurnRecord,
    iter_trajectories,
    read_trajectories,
)

__all__ = [
    "Action",
    "CollectProgress",
    "Episode",
    "EpisodeContext",
    "EpisodeDriver",
    "EpisodeSpec",
    "EpisodeTimeoutError",
    "History",
    "JsonlWriter",
    "Policy",
    "PolicyTimeoutError",
    "TimeLimitError",
    "TrajectoryRecord",
    "Transition",
    "TurnRecord",
    "acall_policy",
    "aclose_policy",
    "call_policy",
    "collect",
    "collect_groups",
    "collect_sync",
    "completed_keys",
    "episode_specs",
    "is_async_policy",
    "iter_trajectories",
    "read_trajectories",
]
