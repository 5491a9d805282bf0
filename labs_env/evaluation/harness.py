"""``evaluate_policy``: run a policy over scenarios and seeds, write trajectories and a report.

Built on the independent-episode collection API (:func:`labs_env.collect`): many episodes run
concurrently, each at its own pace, up to ``concurrency`` at a time. Each finished episode is
appended to ``trajectories.jsonl`` (or ``errors.jsonl`` when an error cut it short: the
service or the network, the policy, a time limit) as soon as it ends, so an interrupted run
loses at most the episodes in flight. Rerunning with the same output directory skips the
episodes already finished (by their spec key) and retries the failed ones. See
:mod:`labs_env.evaluation.run_dir` for the files.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     result = evaluate_policy("scripted", ["insurance-claims/delayed-claim-call"],
    ...                              episodes=2, out_dir=tmp)
    >>> result.summary["overall"]["reward"]["mean"]
    1.0
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from labs_env.checks import check_choice, check_flag, check_int, check_json, check_optional_int
from labs_env.client import AsyncLabsClient
from labs_env.connect import make_async_client
from labs_env.errors import LabsValidationError
from labs_env.evaluation.early_stop import EARLY_STOP_AFTER, UniformFailures
from labs_env.evaluation.progress import EvalProgress
from labs_env.evaluation.report import render_markdown
from labs_env.evaluation.run_dir import RunDir
from labs_env.evaluation.run_lock import RunLock
from labs_env.evaluation.scenarios import ScenarioRef, normalise_scenarios, resolve_scenarios
from labs_env.evaluation.summary import StatsOptions, summarize
from labs_env.models import RewardConfig
from labs_env.policies import load_policy
from labs_env.rollout.collection import SYNC_POLICY_MODES, SyncPolicyMode, collect
from labs_env.rollout.event_loop import blocking
from labs_env.rollout.planning import coerce_reward_config
from labs_env.rollout.policy import aclose_policy, is_policy
from labs_env.rollout.specs import EpisodeSpec, episode_specs
from labs_env.rollout.strict_json import dumps
from labs_env.rollout.time_limits import TimeLimits
from labs_env.rollout.trajectory import JsonlWriter, TrajectoryRecord

if TYPE_CHECKING:  # distributed needs Ray: imported when backend='ray' only
    from labs_env.distributed.placement import PlacedPolicy

__all__ = [
    "BACKENDS",
    "Backend",
    "EvalResult",
    "ScenarioRef",
    "aevaluate_policy",
    "evaluate_policy",
    "resolve_scenarios",
]

ProgressCallback = Callable[[EvalProgress], None]
#: Where the episodes run: this process, or Ray actors.
Backend = Literal["local", "ray"]
BACKENDS: tuple[Backend, ...] = ("local", "ray")


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate_policy` did and where it wrote it.

    Attributes:
        summary: the summary of everything in the output directory (``summary.json``).
        ran: episodes played in this call (errored ones included).
        skipped: episodes already finished in the directory and not played again.
        errored: episodes of this call cut short by an error (service, network, policy, time
            limit).
        plots: PNG files written (empty without ``plots_dir``).
    """

    out_dir: Path
    trajectories: Path
    errors: Path
    summary_path: Path
    report_path: Path
    summary: dict[str, Any]
    ran: int
    skipped: int
    errored: int
    plots: list[Path] = field(default_factory=list)


async def aevaluate_policy(
    policy: PlacedPolicy | str,
    scenarios: Sequence[ScenarioRef],
    *,
    episodes: int = 10,
    seed: int = 0,
    reward_config: RewardConfig | Mapping[str, Any] | None = None,
    concurrency: int = 8,
    out_dir: str | os.PathLike[str] = "runs/eval",
    client: AsyncLabsClient | None = None,
    progress: ProgressCallback | None = None,
    policy_name: str | Mapping[str, Any] | None = None,
    plots_dir: str | os.PathLike[str] | None = None,
    stats: StatsOptions | None = None,
    fsync: bool = True,
    sync_policy: SyncPolicyMode | None = None,
    backend: Backend = "local",
    workers: int = 2,
    ray_address: str | None = None,
    stop_after_failures: int | None = EARLY_STOP_AFTER,
    time_limits: TimeLimits | None = None,
) -> EvalResult:
    """Evaluate ``policy`` and write the run's files into ``out_dir``.

    Args:
        policy: a policy callable (sync or async), or a spec for
            :func:`~labs_env.policies.load_policy` (``"scripted"``, ``"random"``, ...).
        scenarios: ``"collection/scenario"`` strings or pairs.
        episodes: episodes per scenario. Episode ``i`` of every scenario is played with
            ``config.seed = seed + i`` (:func:`~labs_env.episode_specs`): two policies
            run with the same ``seed`` are paired episode by episode, and raising
            ``episodes`` on a rerun extends the run.
        seed: the run's seed.
        reward_config: sent with every turn (``None``: the service's default scoring).
        concurrency: episodes in flight at once.
        out_dir: the run directory (see :mod:`labs_env.evaluation.run_dir`); reused to resume.
        client: the async client (default :func:`~labs_env.connect.make_async_client`: the
            real service when ``LABS_API_KEY`` is set, else the embedded server). Not closed.
        progress: called with the running :class:`EvalProgress` before the first episode and
            after each one.
        policy_name: what the run records as its policy (default: the spec, or the class
            name); a rerun with another name is refused, as is one with another reward config.
        plots_dir: also draw the PNG charts there (needs matplotlib).
        stats: interval options for the summary.
        fsync: make each record durable before going on (off only for throwaway runs).
        sync_policy: how a sync policy is called (see :func:`~labs_env.collect`):
            ``"thread"`` or ``"inline"``; default inline for the built-in scripted and random
            baselines (pure CPU), a thread pool otherwise.
        backend: ``"local"`` (this process) or ``"ray"``: ``workers`` Ray actors share the
            ``concurrency`` (see :mod:`labs_env.distributed`; the ``ray`` extra). The policy
            must be picklable, or wrapped with
            :func:`~labs_env.distributed.on_workers` / :func:`~labs_env.distributed.on_driver`.
        workers: Ray actors (``backend="ray"``).
        ray_address: the Ray cluster (``None``: ``$RAY_ADDRESS`` or a new local instance).
        stop_after_failures: stop the run when its first this many episodes all failed the
            same way (a model server that is down, a policy that fails on every turn): the
            summary covers them, and :class:`~labs_env.evaluation.early_stop.RunStoppedError`
            says why. ``None``: play everything.
        time_limits: per policy call and per episode (wall clock): a policy that hangs ends
            its episode as an error record instead of holding its slot forever (see
            :class:`~labs_env.rollout.time_limits.TimeLimits`; this process only, not on Ray).

    Raises:
        LabsValidationError: bad arguments, unknown scenarios, or a directory holding a run
            with another policy or reward config. Nothing is run.
        RunLockedError: another run is writing to ``out_dir`` (its pid, host and start time
            are in the message; see :mod:`labs_env.evaluation.run_lock`). Nothing is run.
        RunStoppedError: the first ``stop_after_failures`` episodes all failed the same way.
    """
    config = coerce_reward_config(reward_config)
    pairs = normalise_scenarios(scenarios)
    check_int(episodes, "episodes", minimum=1)
    check_int(concurrency, "concurrency", minimum=1)
    check_int(workers, "workers", minimum=1)
    check_optional_int(stop_after_failures, "stop_after_failures", minimum=1)
    check_choice(backend, "backend", BACKENDS)
    if sync_policy is not None:
        check_choice(sync_policy, "sync_policy", SYNC_POLICY_MODES)
    check_flag(fsync, "fsync")
    if time_limits is not None and backend == "ray":
        raise LabsValidationError(
            "time_limits", "not supported on the Ray backend", "use backend='local' with them"
        )
    limits = time_limits or TimeLimits(episode_timeout=None, policy_timeout=None)
    if client is not None and not isinstance(client, AsyncLabsClient):
        raise LabsValidationError(
            "client",
            f"expected an AsyncLabsClient, got {type(client).__name__}",
            "pass make_async_client(...) (episodes run concurrently on one event loop)",
        )
    name = _policy_name(policy) if policy_name is None else check_json(policy_name, "policy_name")
    own_policy = isinstance(policy, str)
    player = load_policy(policy) if isinstance(policy, str) else policy
    if backend == "local" and not is_policy(player):
        raise LabsValidationError(
            "policy",
            f"{type(player).__name__} places the policy on Ray workers or the driver",
            "pass backend='ray' with on_workers(...) / on_driver(...), or the policy itself",
        )
    if plots_dir is not None:  # checked now, not after the run: the charts come last
        from labs_env.evaluation.plots import plots_directory

        plots_directory(plots_dir)
    run = RunDir(out_dir)
    lock = RunLock(run.path)
    own_client = client is None
    active = client if client is not None else make_async_client(max_connections=concurrency)
    try:
        lock.acquire()  # one run at a time per directory: before anything is read or played
        resolve_scenarios(await active.catalog(), None, [f"{c}/{s}" for c, s in pairs])
        run.check_settings(
            {
                "policy": name,
                "reward_config": None if config is None else config.model_dump(),
                "seed": seed,
                "scenarios": [f"{c}/{s}" for c, s in pairs],
                "episodes": episodes,
            }
        )
        specs = [
            spec
            for collection, scenario in pairs
            for spec in episode_specs(
                collection,
                scenario,
                episodes=episodes,
                seed=seed,
                reward_config=config,
                extra={"policy": name},
            )
        ]
        finished = run.finished_keys()
        todo = [spec for spec in specs if spec.key not in finished]
        state = EvalProgress(total=len(todo), skipped=len(specs) - len(todo))
        if progress is not None:
            progress(state)
        try:
            if todo:
                mode = sync_policy or ("inline" if _is_cheap(player) else "thread")
                stream = (
                    collect(
                        player,
                        todo,
                        client=active,
                        concurrency=concurrency,
                        sync_policy=mode,
                        policy_timeout=limits.policy_timeout,
                        episode_timeout=limits.episode_timeout,
                    )
                    if is_policy(player) and backend == "local"
                    else _on_ray(player, todo, active, concurrency, mode, workers, ray_address)
                )
                watch = UniformFailures(stop_after_failures)
                await _write_records(run, stream, state, progress, watch, fsync=fsync)
        finally:  # interrupted too: the report covers what finished
            result = _finish(run, state, plots_dir, stats)
    finally:
        lock.release()
        if own_client:
            await active.aclose()
        if own_policy:
            await aclose_policy(player)
    return result


evaluate_policy = blocking(
    aevaluate_policy,
    name="evaluate_policy",
    release=("policy",),
    doc="""Evaluate ``policy`` on ``episodes`` seeded episodes of each scenario (blocking).

    The arguments are :func:`aevaluate_policy`'s. It runs on a private event loop and releases
    what the policy opened on it (e.g. an ``OpenAIChatPolicy``'s async HTTP client); inside a
    running loop await :func:`aevaluate_policy` instead.
    """,
)


def _on_ray(
    policy: PlacedPolicy,
    specs: list[EpisodeSpec],
    client: AsyncLabsClient,
    concurrency: int,
    sync_policy: SyncPolicyMode,
    workers: int,
    ray_address: str | None,
) -> AsyncGenerator[TrajectoryRecord]:
    """The records of ``specs`` played by ``workers`` Ray actors (:mod:`labs_env.distributed`)."""
    from labs_env.distributed.streams import acollect_ray_with_client

    return acollect_ray_with_client(
        policy,
        specs,
        client=client,
        concurrency=concurrency,
        workers=workers,
        ray_address=ray_address,
        sync_policy=sync_policy,
    )


async def _write_records(
    run: RunDir,
    stream: AsyncGenerator[TrajectoryRecord],
    state: EvalProgress,
    progress: ProgressCallback | None,
    watch: UniformFailures,
    *,
    fsync: bool,
) -> None:
    """Append each record to the run's files as it ends; report progress; stop the run when
    ``watch`` sees its episodes all fail the same way."""
    results = JsonlWriter(run.trajectories, fsync=fsync)
    errors: JsonlWriter | None = None  # created at the first failure
    try:
        async with contextlib.aclosing(stream) as records:
            async for record in records:
                if record.ok:
                    results.write(record)
                else:
                    errors = errors or JsonlWriter(run.errors, fsync=fsync)
                    errors.write(record)
                state.add(record)
                if progress is not None:
                    progress(state)
                watch.add(record)
    finally:
        results.close()
        if errors is not None:
            errors.close()


def _finish(
    run: RunDir,
    state: EvalProgress,
    plots_dir: str | os.PathLike[str] | None,
    stats: StatsOptions | None,
) -> EvalResult:
    records = run.records()
    summary = summarize(records, stats)
    summary["duplicates_ignored"] = run.duplicates  # a spec recorded twice counts once
    run.summary.write_text(dumps(summary, "summary", indent=2) + "\n", encoding="utf-8")
    run.report.write_text(render_markdown(summary), encoding="utf-8")
    plots: list[Path] = []
    if plots_dir is not None:
        from labs_env.evaluation.plots import write_plots

        plots = write_plots(records, plots_dir, options=stats)
    return EvalResult(
        out_dir=run.path,
        trajectories=run.trajectories,
        errors=run.errors,
        summary_path=run.summary,
        report_path=run.report,
        summary=summary,
        ran=state.done,
        skipped=state.skipped,
        errored=state.errors,
        plots=plots,
    )


def _is_cheap(policy: PlacedPolicy) -> bool:
    from labs_env.policies.random_policy import RandomPolicy
    from labs_env.policies.scripted import ScriptedPolicy

    return isinstance(policy, (RandomPolicy, ScriptedPolicy))


def _policy_name(policy: PlacedPolicy | str) -> str:
    """A stable name: the spec, ``module:function``, or the object's own repr if it has one."""
    if isinstance(policy, str):
        return policy
    if inspect.isfunction(policy) or inspect.ismethod(policy):
        return f"{policy.__module__}:{policy.__qualname__}"
    if any("__repr__" in vars(cls) for cls in type(policy).__mro__[:-1]):
        return repr(policy)  # e.g. RandomPolicy(seed=3, tool_probability=0.3)
    return f"{type(policy).__module__}:{type(policy).__qualname__}"
