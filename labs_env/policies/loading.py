"""``load_policy``: a policy from a short spec (CLI ``--policy``) or a user's import path."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from labs_env.errors import LabsValidationError
from labs_env.rollout.policy import Policy

__all__ = ["BUILTIN_POLICIES", "load_policy"]

#: Names :func:`load_policy` understands besides ``"package.module:attribute"``.
BUILTIN_POLICIES = ("openai", "random", "scripted")
_FIX = (
    "use one of "
    + ", ".join(repr(name) for name in BUILTIN_POLICIES)
    + " or 'package.module:callable'"
)


def load_policy(spec: str, **options: Any) -> Policy:
    """Build a policy from a spec.

    - ``"scripted"``: :class:`~labs_env.policies.ScriptedPolicy` (``options`` are its arguments).
    - ``"random"``: :class:`~labs_env.policies.RandomPolicy` (e.g. ``seed=0``).
    - ``"openai"``: :class:`~labs_env.policies.OpenAIChatPolicy`; needs ``base_url`` and
      ``model``.
    - ``"package.module:name"`` (``name`` may be dotted): a class is instantiated with
      ``options``; any other callable is the policy itself when no options are given, and a
      factory called with ``options`` (returning the policy) when some are.

    Raises:
        LabsValidationError: unknown name, module or attribute; bad options; not callable.

    Example:
        >>> load_policy("random", seed=3)
        RandomPolicy(seed=3, tool_probability=0.3)
    """
    if not isinstance(spec, str) or not spec.strip():
        raise LabsValidationError("policy", f"must be a non-empty string, got {spec!r}", _FIX)
    spec = spec.strip()
    if spec == "openai":
        missing = [key for key in ("base_url", "model") if not options.get(key)]
        if missing:
            raise LabsValidationError(
                "policy",
                f"'openai' needs {' and '.join(missing)}",
                "pass --base-url http://localhost:8000/v1 --model NAME",
            )
    if spec in BUILTIN_POLICIES:
        target: Any = _builtin(spec)
        return _construct(spec, target, options)
    if ":" not in spec:
        raise LabsValidationError("policy", f"unknown policy {spec!r}", _FIX)
    return _construct(spec, _import_target(spec), options, factory_needs_options=True)


def _builtin(name: str) -> Any:
    if name == "random":
        from labs_env.policies.random_policy import RandomPolicy

        return RandomPolicy
    if name == "openai":
        from labs_env.policies.openai_chat import OpenAIChatPolicy

        return OpenAIChatPolicy
    from labs_env.policies.scripted import ScriptedPolicy

    return ScriptedPolicy


def _import_target(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise LabsValidationError("policy", f"{spec!r} is not 'package.module:callable'", _FIX)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LabsValidationError(
            "policy",
            f"cannot import module {module_name!r}: {exc}",
            "check the module is on PYTHONPATH (or installed) and its imports work",
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise LabsValidationError(
                "policy",
                f"{module_name!r} has no attribute {attribute!r}",
                "check the name after ':'",
            )
        target = getattr(target, part)
    return target


def _construct(
    spec: str, target: Any, options: dict[str, Any], *, factory_needs_options: bool = False
) -> Policy:
    if not callable(target):
        raise LabsValidationError("policy", f"{spec!r} is not callable", "point at a callable")
    if factory_needs_options and not options and not inspect.isclass(target):
        return target  # type: ignore[no-any-return]
    try:
        policy = target(**options)
    except TypeError as exc:
        raise LabsValidationError(
            "policy options",
            f"{spec!r} rejected the options {sorted(options)}: {exc}",
            "pass only arguments the policy accepts",
        ) from None
    if not callable(policy):
        raise LabsValidationError(
            "policy",
            f"{spec!r} produced a non-callable {type(policy).__name__}",
            "a factory must return a callable policy(history, context)",
        )
    return policy  # type: ignore[no-any-return]
