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
# --- env, registry, wrappers, trajectories (issue 4) ---
# --- vector env and collection (issue 5) ---
# --- evaluation (issue 6) ---

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Catalog",
    "EpisodeCompleteError",
    "EpisodeContext",
    "EpisodeCreated",
    "EpisodeNotFoundError",
    "EvaluationResult",
    "InternalServerError",
    "LabsError",
    "LabsValidationError",
    "Message",
    "NotFoundError",
    "PermissionDeniedError",
    "Policy",
    "RateLimitError",
    "RewardConfig",
    "ToolCall",
    "ToolDefinition",
    "TurnMismatchError",
    "TurnResult",
    "__version__",
]
