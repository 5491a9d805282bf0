"""The Gymnasium interfaces: :class:`LabsEnv` (one episode at a time), :class:`LabsVectorEnv`
(N episodes stepped concurrently on one event loop and one pooled client), their spaces and the
registry ids.

- :mod:`~labs_env.envs.env` — ``LabsEnv``;
- :mod:`~labs_env.envs.vector_env` — ``LabsVectorEnv``, over the async
  :mod:`~labs_env.envs.vector_engine` (slots, concurrent steps, prefetched episodes), with
  :mod:`~labs_env.envs.vector_batch` (Gymnasium batches with typed infos) and
  :mod:`~labs_env.envs.loop_binding` (which event loop the requests run on);
- :mod:`~labs_env.envs.arguments` — argument checks shared by both envs; :class:`PerEnv`;
- :mod:`~labs_env.envs.spaces` — ``Unicode``, ``MessageHistory``, ``AgentAction``;
- :mod:`~labs_env.envs.registration` — ``Labs-v0`` and one id per catalog scenario.
"""

from labs_env.envs.arguments import PerEnv
from labs_env.envs.env import LabsEnv
from labs_env.envs.registration import register_catalog, register_envs, scenario_env_id
from labs_env.envs.spaces import AgentAction, MessageHistory, Unicode
from labs_env.envs.vector_env import LabsVectorEnv, VectorStepError

__all__ = [
    "AgentAction",
    "LabsEnv",
    "LabsVectorEnv",
    "MessageHistory",
    "PerEnv",
    "Unicode",
    "VectorStepError",
    "register_catalog",
    "register_envs",
    "scenario_env_id",
]
