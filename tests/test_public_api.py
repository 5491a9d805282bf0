"""Guards of the public surface: a sorted, importable ``__all__``; twin client surfaces."""

from __future__ import annotations

import inspect

import labs_env
from labs_env import AsyncLabsClient, LabsClient


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then everything else."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


def test_all_is_sorted_and_unique() -> None:
    names = list(labs_env.__all__)
    assert len(names) == len(set(names))
    assert names == sorted(names, key=_isort_key)


def test_every_public_name_imports() -> None:
    for name in labs_env.__all__:
        assert getattr(labs_env, name) is not None, name


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_sync_and_async_clients_expose_the_same_methods_and_signatures() -> None:
    sync_methods = _public_methods(LabsClient)
    async_methods = _public_methods(AsyncLabsClient)
    sync_methods.pop("close")
    async_methods.pop("aclose")
    # async only: its connections belong to one event loop (see its docstring)
    async_methods.pop("close_idle_connections")
    assert sync_methods.keys() == async_methods.keys()
    for name, signature in sync_methods.items():
        assert str(signature) == str(async_methods[name]), name
        assert inspect.iscoroutinefunction(getattr(AsyncLabsClient, name)), name
        assert not inspect.iscoroutinefunction(getattr(LabsClient, name)), name
    assert {
        "catalog",
        "create_episode",
        "submit_turn",
        "evaluate",
        "batch_evaluate",
        "compare",
        "terminate_episode",
    } <= sync_methods.keys()


def test_clients_expose_the_same_properties() -> None:
    def props(cls: type) -> set[str]:
        return {n for n, m in inspect.getmembers(cls) if isinstance(m, property)}

    assert (
        props(LabsClient)
        == props(AsyncLabsClient)
        >= {"base_url", "rate_limit", "api_key", "closed"}
    )


def test_constructors_take_the_same_arguments() -> None:
    sync_params = inspect.signature(LabsClient).parameters
    async_params = inspect.signature(AsyncLabsClient).parameters
    assert list(sync_params) == list(async_params)
    assert list(sync_params)[:4] == ["api_key", "base_url", "timeout", "max_retries"]


#: Every public name of 0.1 (before the package was split into layers): still importable from
#: ``labs_env`` itself; deep import paths changed (CHANGELOG.md lists them).
_NAMES_0_1 = """
    DOCUMENTED_CURRICULUM APIConnectionError APIError APIResponseValidationError
    APIStatusError APITimeoutError AgentAction AsyncLabsClient AuthenticationError
    BadRequestError BatchEvaluateItem BatchEvaluateResult BatchItemResult Catalog
    CollectProgress CompareOutcome CompareResult CurriculumPhase CurriculumWrapper
    EpisodeCompleteError EpisodeContext EpisodeCreated EpisodeNotFoundError EpisodeSpec
    EvalProgress EvalResult EvaluationResult InternalServerError JsonlWriter LabsClient
    LabsEnv LabsError LabsValidationError LabsVectorEnv Message MessageHistory NotFoundError
    OpenAIChatPolicy PerEnv PermissionDeniedError Policy RandomPolicy RateLimitError
    RateLimitSnapshot RetryPolicy RewardConfig ScoreRewardWrapper ScriptedPolicy
    SparseFinalScoring ToolCall ToolDefinition TrajectoryRecord TrajectoryRecorder
    TurnMismatchError TurnRecord TurnResult Unicode VectorCurriculumWrapper VectorStepError
    __version__ acompare_policies aevaluate_policy collect collect_groups collect_sync
    compare_policies completed_keys episode_specs evaluate_policy load_policy
    make_async_client make_client read_trajectories register_catalog
"""
PUBLIC_IN_0_1 = frozenset(_NAMES_0_1.split())


def test_the_public_names_of_0_1_still_import_from_the_package() -> None:
    assert set(labs_env.__all__) >= PUBLIC_IN_0_1
    for name in PUBLIC_IN_0_1:
        assert getattr(labs_env, name) is not None, name


def test_derived_twins_take_the_parameters_of_what_they_derive_from() -> None:
    pairs = [
        (labs_env.evaluate_policy, labs_env.aevaluate_policy),
        (labs_env.compare_policies, labs_env.acompare_policies),
        (labs_env.collect_sync, labs_env.collect),
        (labs_env.collect_groups, labs_env.collect),
    ]
    for twin, origin in pairs:
        assert list(inspect.signature(twin).parameters) == list(
            inspect.signature(origin).parameters
        ), twin.__name__
