"""The :class:`~gymnasium.envs.registration.EnvSpec` of a :class:`~labs_env.LabsEnv`.

Its ``kwargs`` remake the env. Gymnasium deep-copies them (``EnvSpec.make``, every wrapper's
``spec``) and prints them: a client is shared instead (a handle on a connection pool) and an
API key stays masked (:class:`Shared`). The reward config is kept as a plain dict, so a spec
of an env made without a client or key is JSON (``spec.to_json()``); one holding a client or a
key refuses with a :class:`~labs_env.errors.LabsValidationError` saying why and what to do.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gymnasium.envs.registration import EnvSpec

from labs_env.client import LabsClient
from labs_env.client.api_key import API_KEY_ENV, ApiKey
from labs_env.errors import LabsValidationError
from labs_env.models import RewardConfig

__all__ = ["LabsEnvSpec", "Shared", "labs_spec", "unshare"]

_NOT_JSON = {
    "client": (
        "holds a LabsClient (a live connection pool), which cannot be written to JSON",
        "make the env without client= (it then makes its own from LABS_API_KEY and LABS_URL) "
        "for a spec that is JSON",
    ),
    "api_key": (
        "holds an API key, which is never written out",
        f"set {API_KEY_ENV} in the environment instead of passing api_key=; the spec then "
        "holds no key",
    ),
}


class Shared:
    """A value in ``env.spec.kwargs`` that Gymnasium's ``deepcopy`` shares instead of copying.

    An :class:`ApiKey` refuses to be copied or pickled (it would write the key out); its repr
    stays masked.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __deepcopy__(self, memo: dict[int, Any]) -> Shared:
        return self

    def __repr__(self) -> str:
        if isinstance(self.value, ApiKey):
            return repr(self.value)
        return f"<shared {type(self.value).__name__}>"


def unshare(value: Any) -> Any:
    """The value a :class:`Shared` holds (anything else as is)."""
    return value.value if isinstance(value, Shared) else value


@dataclasses.dataclass
class LabsEnvSpec(EnvSpec):
    """An :class:`EnvSpec` whose :meth:`to_json` explains a client or key it cannot write."""

    def to_json(self) -> str:
        """The spec as JSON (see :meth:`EnvSpec.to_json`).

        Raises:
            LabsValidationError: the spec holds a client or an API key.
        """
        for name, (problem, fix) in _NOT_JSON.items():
            if isinstance(self.kwargs.get(name), Shared):
                raise LabsValidationError(f"spec.kwargs.{name}", problem, fix)
        return super().to_json()


def labs_spec(spec: EnvSpec) -> LabsEnvSpec:
    """``spec`` with its client and key shared, its reward config a dict, as a
    :class:`LabsEnvSpec`."""
    kwargs = dict(spec.kwargs)
    if isinstance(kwargs.get("client"), LabsClient):
        kwargs["client"] = Shared(kwargs["client"])
    if isinstance(kwargs.get("api_key"), (str, ApiKey)):
        kwargs["api_key"] = Shared(ApiKey.resolve(kwargs["api_key"]))
    if isinstance(kwargs.get("reward_config"), RewardConfig):
        kwargs["reward_config"] = kwargs["reward_config"].model_dump()
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(EnvSpec) if f.init}
    return LabsEnvSpec(**{**fields, "kwargs": kwargs})
