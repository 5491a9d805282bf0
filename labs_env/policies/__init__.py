"""Agent policies: the protocol and built-in baselines."""

from labs_env.policies.base import Action, EpisodeContext, Policy

__all__ = ["Action", "EpisodeContext", "Policy"]
