"""labs_env: the Labs API as Gymnasium environments.

Each area adds its public names in its own block below; ``__all__`` is kept sorted and a test
guards it.
"""

from __future__ import annotations

from labs_env._version import __version__
from labs_env.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    EpisodeCompleteError,
    EpisodeNotFoundError,
    InternalServerError,
    LabsError,
    LabsValidationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    TurnMismatchError,
)
from labs_env.models import (
    Catalog,
    EpisodeCreated,
    EvaluationResult,
    Message,
    RewardConfig,
    ToolCall,
    ToolDefinition,
    TurnResult,
)
from labs_env.policies import EpisodeContext, Policy

# --- client (issue 2) ---
# isort: split
from labs_env._ratelimit import RateLimitSnapshot
from labs_env._retry import RetryPolicy
from labs_env.client import AsyncLabsClient, LabsClient
from labs_env.models import (
    BatchEvaluateItem,
    BatchEvaluateResult,
    BatchItemResult,
    CompareResult,
)

# --- env, registry, wrappers, trajectories (issue 4) ---
# isort: split
from labs_env.connect import make_async_client, make_client
from labs_env.env import LabsEnv
from labs_env.registration import register_catalog, register_envs
from labs_env.spaces import AgentAction, MessageHistory, Unicode
from labs_env.trajectory import JsonlWriter, TrajectoryRecord, TurnRecord, read_trajectories
from labs_env.wrappers import (
    DOCUMENTED_CURRICULUM,
    CurriculumPhase,
    CurriculumWrapper,
    ScoreRewardWrapper,
    SparseFinalScoring,
    TrajectoryRecorder,
)

# --- vector env and collection (issue 5) ---
# isort: split
from labs_env.collect import (
    CollectProgress,
    EpisodeSpec,
    collect,
    collect_groups,
    collect_sync,
    completed_keys,
    episode_specs,
)
from labs_env.vector import LabsVectorEnv, PerEnv, VectorCurriculumWrapper, VectorStepError

register_envs()

# --- evaluation (issue 6) ---
# isort: split
from labs_env.evaluation import (  # noqa: E402 (after register_envs)
    CompareOutcome,
    EvalProgress,
    EvalResult,
    acompare_policies,
    aevaluate_policy,
    compare_policies,
    evaluate_policy,
)
from labs_env.policies import (  # noqa: E402
    OpenAIChatPolicy,
    RandomPolicy,
    ScriptedPolicy,
    load_policy,
)

__all__ = [
    "DOCUMENTED_CURRICULUM",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AgentAction",
    "AsyncLabsClient",
    "AuthenticationError",
    "BadRequestError",
    "BatchEvaluateItem",
    "BatchEvaluateResult",
    "BatchItemResult",
    "Catalog",
    "CollectProgress",
    "CompareOutcome",
    "CompareResult",
    "CurriculumPhase",
    "CurriculumWrapper",
    "EpisodeCompleteError",
    "EpisodeContext",
    "EpisodeCreated",
    "EpisodeNotFoundError",
    "EpisodeSpec",
    "EvalProgress",
    "EvalResult",
    "EvaluationResult",
    "InternalServerError",
    "JsonlWriter",
    "LabsClient",
    "LabsEnv",
    "LabsError",
    "LabsValidationError",
    "LabsVectorEnv",
    "Message",
    "MessageHistory",
    "NotFoundError",
    "OpenAIChatPolicy",
    "PerEnv",
    "PermissionDeniedError",
    "Policy",
    "RandomPolicy",
    "RateLimitError",
    "RateLimitSnapshot",
    "RetryPolicy",
    "RewardConfig",
    "ScoreRewardWrapper",
    "ScriptedPolicy",
    "SparseFinalScoring",
    "ToolCall",
    "ToolDefinition",
    "TrajectoryRecord",
    "TrajectoryRecorder",
    "TurnMismatchError",
    "TurnRecord",
    "TurnResult",
    "Unicode",
    "VectorCurriculumWrapper",
    "VectorStepError",
    "__version__",
    "acompare_policies",
    "aevaluate_policy",
    "collect",
    "collect_groups",
    "collect_sync",
    "compare_policies",
    "completed_keys",
    "episode_specs",
    "evaluate_policy",
    "load_policy",
    "make_async_client",
    "make_client",
    "read_trajectories",
    "register_catalog",
]
