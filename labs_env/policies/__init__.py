"""Agent policies: the protocol and built-in baselines.

:class:`TransformersPolicy` needs the ``[train]`` extra (torch, transformers, gguf) only when
one is made: importing this package never imports torch.
"""

from labs_env.policies.loading import BUILTIN_POLICIES, load_policy
from labs_env.policies.openai_chat import ChatCompletionError, OpenAIChatPolicy
from labs_env.policies.random_policy import RandomPolicy
from labs_env.policies.scripted import ScriptedPolicy
from labs_env.policies.transformers_policy import TransformersPolicy
from labs_env.rollout.policy import (
    Action,
    EpisodeContext,
    Policy,
    acall_policy,
    call_policy,
    is_async_policy,
)

__all__ = [
    "BUILTIN_POLICIES",
    "Action",
    "ChatCompletionError",
    "EpisodeContext",
    "OpenAIChatPolicy",
    "Policy",
    "RandomPolicy",
    "ScriptedPolicy",
    "TransformersPolicy",
    "acall_policy",
    "call_policy",
    "is_async_policy",
    "load_policy",
]
