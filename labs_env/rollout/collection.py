"""Independent-episode rollout collection: many episodes at once, each at its own pace.

Lockstep (a vector env) waits for the slowest of N requests every step. With an LLM served
with continuous batching, each episode should instead move on as soon as *its* response
arrives. :func:`collect` runs up to ``concurrency`` episodes concurrently on one
:class:`~labs_env.AsyncLabsClient` (one pool, one rate limiter) and yields each finished
episode's :class:`~labs_env.TrajectoryRecord` (the recorder's format) as it completes.

Example:
    >>> import asyncio
    >>> from labs_env import collect, episode_specs
    >>> async def main():
    ...     specs = episode_specs("insurance-claims", "delayed-claim-call", episodes=8)
    ...     finished = []
    ...     async for record in collect(lambda history, context: "Hello!", specs):
    ...         finished.append(record)  # as each episode ends (completion order)
    ...     return finished
    >>> records = asyncio.run(main())
    >>> len(records), all(record.ok for record in records)
    (8, True)

Policies: ``policy(history, context) -> action`` (see :mod:`labs_env.policies`). Async
policies (and objects with an async ``acall``, like ``OpenAIChatPolicy``) are awaited on the
loop. Sync policies run in a thread pool by default (``sync_policy="thread"``), so a blocking
call (an HTTP request to a model server) does not stall the other episodes; pass
``sync_policy="inline"`` for cheap CPU-only policies (scripted, random) to skip the thread hop.

Errors: with ``on_error="record"`` (default) an episode that fails — the service, the network
or the policy — ends with a record whose ``error`` is set (``record.ok`` is false; never a
reward), and the others continue. ``on_error="raise"`` stops the collection at the first error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import os
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec

from labs_env.checks import check_choice, check_flag, check_int, check_number, check_optional_int
from labs_env.client import AsyncLabsClient
from labs_env.client.api_key import ApiKey
from labs_env.connect import make_async_client
from labs_env.errors import LabsValidationError
from labs_env.rollout.driver import EpisodeDriver
from labs_env.rollout.episode import Episode
from labs_env.rollout.event_loop import run_sync
from labs_env.rollout.policy import (
    EpisodeContext,
    Policy,
    acall_policy,
    is_async_policy,
    is_policy,
)
from labs_env.rollout.recording import RecordBuilder, error_text
from labs_env.rollout.specs import EpisodeSpec, completed_keys, episode_specs
from labs_env.rollout.time_limits import TimeLimits
from labs_env.rollout.trajectory import JsonlWriter, TrajectoryRecord

__all__ = [
    "ON_FAILURE",
    "SYNC_POLICY_MODES",
    "CollectProgress",
    "EpisodeSpec",
    "OnFailure",
    "SyncPolicyMode",
    "collect",
    "collect_groups",
    "collect_sync",
    "completed_keys",
    "episode_specs",
]

P = ParamSpec("P")

#: What a failed episode does to the collection: recorded (the others go on), or raised.
OnFailure = Literal["record", "raise"]
ON_FAILURE: tuple[OnFailure, ...] = ("record", "raise")
#: How a sync policy is called: in a thread pool (it may block), or inline on the loop.
SyncPolicyMode = Literal["thread", "inline"]
SYNC_POLICY_MODES: tuple[SyncPolicyMode, ...] = ("thread", "inline")


@dataclass(frozen=True)
class CollectProgress:
    """Counts passed to the ``progress`` callback after each finished episode.

    Attributes:
        total: episodes to play.
        finished: episodes ended (with or without error).
        failed: episodes ended by an error.
        in_flight: episodes running now.
        turns: turns played so far (all episodes).
        mean_reward: mean final reward of the successful episodes (``None``: none yet).
        elapsed_s: seconds since the collection started.
        last: the record that just finished.
    """

    total: int
    finished: int
    failed: int
    in_flight: int
    turns: int
    mean_reward: float | None
    elapsed_s: float
    last: TrajectoryRecord

    @property
    def turns_per_s(self) -> float:
        """Turns per second so far."""
        return self.turns / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Lane:
    """One worker's next episode when it is created ahead: its spec and the creation task."""

    __slots__ = ("ahead",)

    def __init__(self) -> None:
        self.ahead: tuple[EpisodeSpec, asyncio.Task[Episode]] | None = None

    def take(self) -> tuple[EpisodeSpec, asyncio.Task[Episode]] | None:
        """The episode created ahead, if any (the lane is empty afterwards)."""
        ahead, self.ahead = self.ahead, None
        return ahead


class EpisodeRun:
    """State of one collection (see :func:`collect`)."""

    def __init__(
        self,
        policy: Policy,
        driver: EpisodeDriver,
        specs: Iterator[EpisodeSpec],
        total: int,
        *,
        max_turns: int | None,
        prefetch: bool,
        sync_policy: str,
        executor: concurrent.futures.Executor | None,
        progress: Callable[[CollectProgress], Any] | None,
        limits: TimeLimits | None = None,
    ) -> None:
        self.policy = policy
        self.policy_is_async = is_async_policy(policy)
        acall = getattr(policy, "acall", None)
        # The coroutine function to await each turn (an object's ``acall``, or an async
        # function), found once rather than per turn.
        self._acall = (
            acall
            if inspect.iscoroutinefunction(acall)
            else policy
            if inspect.iscoroutinefunction(policy)
            else None
        )
        self.driver = driver
        self.specs = specs  # shared by the workers: each spec is taken by one of them
        self.total = total
        self.max_turns = max_turns
        self.prefetch = prefetch
        self.lanes: list[Lane] = []
        self.sync_policy = sync_policy
        self.executor = executor
        self.progress = progress
        self.limits = limits or TimeLimits(episode_timeout=None, policy_timeout=None)
        self.started = time.perf_counter()
        self.running: dict[int, Episode] = {}
        self.finished = self.failed = self.turns = 0
        self._reward_sum = 0.0
        self._ok = 0

    async def act(self, history: Any, context: Any) -> Any:
        if self._acall is not None:
            return await self._acall(history, context)
        if self.policy_is_async:
            return await acall_policy(self.policy, history, context)
        if self.sync_policy == "thread":
            loop = asyncio.get_running_loop()
            action = await loop.run_in_executor(self.executor, self.policy, history, context)
        else:
            action = self.policy(history, context)
        if inspect.isawaitable(action):
            action = await action
        return action

    def next_episode(self, lane: Lane) -> tuple[EpisodeSpec, asyncio.Task[Episode] | None] | None:
        """What ``lane``'s worker plays next: the episode it created ahead, else the next spec
        (``None``: nothing left)."""
        ahead = lane.take()
        if ahead is not None:
            return ahead
        spec = next(self.specs, None)
        return None if spec is None else (spec, None)

    def _last_turn(self, context: EpisodeContext) -> bool:
        """Whether the next turn is the episode's last: it reaches ``max_turns`` or the
        scenario's turn limit (the catalog's, in the context), so the episode ends there."""
        limits = [n for n in (self.max_turns, context.max_turns) if n]
        return bool(limits) and context.turn + 1 >= min(limits)

    def _create_ahead(self, lane: Lane) -> None:
        """Take the next spec and start creating its episode now, while the current episode
        plays its last turn: the create round trip overlaps that turn instead of following it."""
        spec = next(self.specs, None)
        if spec is not None:
            lane.ahead = (spec, asyncio.ensure_future(self.driver.create(spec.plan())))

    async def play(
        self, spec: EpisodeSpec, creating: asyncio.Task[Episode] | None, lane: Lane
    ) -> TrajectoryRecord:
        """One episode, start to end; failures become the record's ``error``.

        ``creating``: the episode's creation, started ahead by this lane's previous episode.
        """
        driver = self.driver
        slot = id(spec)
        builder: RecordBuilder | None = None
        limited = self.limits.step
        deadline = self.limits.deadline()
        try:
            first = creating if creating is not None else driver.create(spec.plan())
            episode = await limited(first, deadline, turn=0)
            self.running[slot] = episode
            builder = RecordBuilder.for_episode(episode, spec.record_extra())
            history = episode.observation()
            while not episode.done:
                if self.max_turns is not None and episode.turn >= self.max_turns:
                    await driver.terminate(episode)
                    break
                context = driver.context(episode)
                if self.prefetch and lane.ahead is None and self._last_turn(context):
                    self._create_ahead(lane)
                turn = episode.turn
                action = await limited(self.act(history, context), deadline, turn=turn, policy=True)
                started = time.perf_counter()
                sent = driver.submit(episode, episode.build_turn(action))
                transition = await limited(sent, deadline, turn=turn)
                builder.add_turn(transition, time.perf_counter() - started)
                self.turns += 1
                history = transition.observation
            self.running.pop(slot, None)
            record = builder.finish(truncated=True)  # no effect on an episode that ended itself
        except asyncio.CancelledError:
            raise  # the episode stays in self.running: collect() terminates it
        except Exception as exc:
            if builder is None:
                record = spec.failed_record(error_text(exc), type(exc).__name__)
            else:
                record = builder.finish(error=exc)
                unfinished = self.running.pop(slot, None)
                if unfinished is not None:
                    await driver.terminate(unfinished)
            record.extra["error_type"] = type(exc).__name__
            self._done(record)
            raise EpisodeFailed(record, exc) from exc
        return self._done(record)  # outside the try: a failing callback is not an episode error

    def _done(self, record: TrajectoryRecord) -> TrajectoryRecord:
        self.finished += 1
        if record.ok:
            self._ok += 1
            self._reward_sum += record.final_reward or 0.0
        else:
            self.failed += 1
        if self.progress is not None:
            self.progress(
                CollectProgress(
                    total=self.total,
                    finished=self.finished,
                    failed=self.failed,
                    in_flight=len(self.running),
                    turns=self.turns,
                    mean_reward=self._reward_sum / self._ok if self._ok else None,
                    elapsed_s=time.perf_counter() - self.started,
                    last=record,
                )
            )
        return record


class EpisodeFailed(Exception):
    """An episode failed; ``record`` is its trajectory so far (with ``error`` set)."""

    def __init__(self, record: TrajectoryRecord, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.record = record
        self.cause = cause


async def collect(
    policy: Policy,
    specs: Iterable[EpisodeSpec],
    *,
    client: AsyncLabsClient | None = None,
    api_key: str | ApiKey | None = None,
    base_url: str | None = None,
    concurrency: int = 64,
    group_size: int = 1,
    score_turns: bool = True,
    validate_tool_calls: bool = False,
    max_turns: int | None = None,
    on_error: OnFailure = "record",
    sync_policy: SyncPolicyMode = "thread",
    progress: Callable[[CollectProgress], Any] | None = None,
    output: str | os.PathLike[str] | JsonlWriter | None = None,
    close_timeout: float = 5.0,
    prefetch: bool = True,
    episode_timeout: float | None = None,
    policy_timeout: float | None = None,
) -> AsyncGenerator[TrajectoryRecord, None]:
    """Play every spec's episode, at most ``concurrency`` at a time; yield each record as its
    episode finishes (completion order, not spec order).

    Args:
        policy: ``policy(history, context) -> action``, sync or async (module docstring).
        specs: what to play (see :func:`episode_specs`); skip done ones with
            :func:`completed_keys` to resume.
        client: an :class:`AsyncLabsClient` (not closed). ``None``: one is made from
            ``api_key``/``base_url`` (the embedded local server without a key) and closed.
        concurrency: episodes in flight at most.
        group_size: play each spec ``k`` times as a GRPO group (same scenario and seed;
            records carry ``extra["group"]`` and ``extra["member"]``).
        score_turns, validate_tool_calls: as for :class:`~labs_env.LabsEnv`.
        max_turns: end episodes (truncated, ``client_terminated``) after this many turns.
        on_error: ``"record"`` or ``"raise"`` (module docstring).
        sync_policy: ``"thread"`` or ``"inline"`` (module docstring).
        progress: called with a :class:`CollectProgress` after each finished episode.
        output: also append each record to this JSONL file (or :class:`JsonlWriter`).
        close_timeout: seconds spent terminating unfinished episodes when stopped early.
        prefetch: while an episode plays its last turn (``max_turns`` or the scenario's limit
            in the catalog), its worker already creates the next episode, so the create round
            trip is hidden (one more request in flight per worker, never an extra episode).
        episode_timeout: end an episode that runs longer than this many seconds (wall clock
            from its start, creation included); ``None``: no limit.
        policy_timeout: end an episode whose policy takes longer than this many seconds to
            answer one turn; ``None``: no limit.

    Time limits (see :mod:`labs_env.rollout.time_limits`): an episode past one ends as
    truncated, with its partial turns and the limit in ``record.error`` (``error_type``
    ``EpisodeTimeoutError`` / ``PolicyTimeoutError``), so it is never a result; it is
    terminated on the service. A time limit is not a service failure; ``on_error="raise"``
    raises it. A sync policy run ``inline`` blocks the loop and cannot be cut.

    Stopping early (``break``): wrap the iterator in ``contextlib.aclosing`` so unfinished
    episodes are cancelled and terminated at once rather than when it is garbage-collected.
    """
    if not is_policy(policy):
        raise LabsValidationError(
            "policy",
            f"{type(policy).__name__} is not a policy (a callable policy(history, context))",
            "pass the policy itself; a named baseline is labs_env.load_policy('scripted')",
        )
    check_choice(on_error, "on_error", ON_FAILURE)
    check_choice(sync_policy, "sync_policy", SYNC_POLICY_MODES)
    check_int(concurrency, "concurrency", minimum=1, example=64)
    check_int(group_size, "group_size", minimum=1)
    check_optional_int(max_turns, "max_turns", minimum=1)
    for name, flag in (
        ("score_turns", score_turns),
        ("validate_tool_calls", validate_tool_calls),
        ("prefetch", prefetch),
    ):
        check_flag(flag, name)
    check_number(close_timeout, "close_timeout")
    limits = TimeLimits(episode_timeout=episode_timeout, policy_timeout=policy_timeout)
    if client is not None and (api_key is not None or base_url is not None):
        raise LabsValidationError("client", "given together with api_key/base_url", "")
    todo = [m for s in specs for m in (s.group_of(group_size) if group_size > 1 else [s])]
    owns_client = client is None
    if client is None:
        connections = concurrency * (2 if prefetch else 1)  # creates overlap last turns
        client = make_async_client(api_key, base_url, max_connections=connections)
    writer = output if isinstance(output, JsonlWriter) or output is None else JsonlWriter(output)
    executor = (
        concurrent.futures.ThreadPoolExecutor(min(concurrency, 32), "labs-policy")
        if sync_policy == "thread" and not is_async_policy(policy)
        else None
    )
    driver = EpisodeDriver(client, score_turns=score_turns, validate_tool_calls=validate_tool_calls)
    run = EpisodeRun(
        policy,
        driver,
        iter(todo),
        len(todo),
        max_turns=max_turns,
        prefetch=prefetch,
        sync_policy=sync_policy,
        executor=executor,
        progress=progress,
        limits=limits,
    )
    queue: asyncio.Queue[TrajectoryRecord | BaseException] = asyncio.Queue()

    async def worker(lane: Lane) -> None:
        try:
            while (upcoming := run.next_episode(lane)) is not None:
                try:
                    record = await run.play(*upcoming, lane)
                except EpisodeFailed as failed:
                    record = failed.record
                    if on_error == "raise":
                        queue.put_nowait(failed.cause)
                        return
                queue.put_nowait(record)
                del record  # not kept alive (with all its turns) while the next episode plays
        except Exception as exc:  # a failing progress callback (or a bug): stop, don't hang
            queue.put_nowait(exc)

    workers: list[asyncio.Future[None]] = []
    try:
        with contextlib.suppress(Exception):
            await driver.catalog()  # descriptions and turn limits for the policy's context
        run.lanes = [Lane() for _ in range(min(concurrency, len(todo)))]
        workers = [asyncio.ensure_future(worker(lane)) for lane in run.lanes]
        for _ in range(len(todo)):
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            if writer is not None:
                writer.write(item)
            yield item
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        ending = [driver.terminate(e) for e in run.running.values()]
        ending += [driver.terminate_created(a[1]) for lane in run.lanes if (a := lane.take())]
        if ending:
            await asyncio.wait([asyncio.ensure_future(c) for c in ending], timeout=close_timeout)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if owns_client:
            await client.aclose()
        if writer is not None and writer is not output:
            writer.close()


def _grouped(
    run: Callable[P, AsyncGenerator[TrajectoryRecord]],
) -> Callable[P, AsyncGenerator[list[TrajectoryRecord], None]]:
    """``run``'s records gathered into their GRPO groups (same parameters as ``run``)."""
    signature = inspect.signature(run)

    async def groups(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[list[TrajectoryRecord]]:
        group_size = signature.bind(*args, **kwargs).arguments.get("group_size", 1)
        if isinstance(group_size, int) and not isinstance(group_size, bool) and group_size < 2:
            raise LabsValidationError(
                "group_size",
                f"a GRPO group needs at least 2 members, got {group_size}",
                "pass group_size=k with k >= 2 (advantages are relative to the group's mean)",
            )
        open_groups: dict[str, list[TrajectoryRecord]] = {}
        async with contextlib.aclosing(run(*args, **kwargs)) as records:
            async for record in records:
                group = str(record.extra.get("group"))
                members = open_groups.setdefault(group, [])
                members.append(record)
                if len(members) == group_size:
                    del open_groups[group]
                    yield sorted(members, key=lambda r: int(r.extra.get("member", 0)))

    groups.__signature__ = signature.replace(  # type: ignore[attr-defined]
        return_annotation="AsyncGenerator[list[TrajectoryRecord], None]"
    )
    return groups


def _gathered(
    run: Callable[P, AsyncGenerator[TrajectoryRecord]],
) -> Callable[P, list[TrajectoryRecord]]:
    """``run`` from sync code: all its records in spec order (same parameters as ``run``)."""
    signature = inspect.signature(run)

    def gather(*args: P.args, **kwargs: P.kwargs) -> list[TrajectoryRecord]:
        bound = signature.bind(*args, **kwargs)
        specs = bound.arguments["specs"] = list(bound.arguments["specs"])

        async def main() -> list[TrajectoryRecord]:
            async with contextlib.aclosing(run(*bound.args, **bound.kwargs)) as records:
                return [record async for record in records]

        order = {spec.key: i for i, spec in enumerate(specs)}

        def position(record: TrajectoryRecord) -> tuple[int, int]:
            key = str(record.extra.get("spec_key"))
            if key in order:  # a spec passed as is
                return order[key], 0
            group = order.get(str(record.extra.get("group")), len(order))
            return group, int(record.extra["member"])

        return sorted(run_sync(main()), key=position)

    gather.__signature__ = signature.replace(  # type: ignore[attr-defined]
        return_annotation="list[TrajectoryRecord]"
    )
    return gather


collect_groups = _grouped(collect)
collect_groups.__name__ = collect_groups.__qualname__ = "collect_groups"
collect_groups.__doc__ = """Like :func:`collect` (same arguments; ``group_size`` >= 2), yielding
each GRPO group (its ``group_size`` records, in member order) as soon as its last member ends.

Compute group-relative advantages from the records with ``record.ok``; a group with a failed
member is still yielded (drop or re-run it).
"""

collect_sync = _gathered(collect)
collect_sync.__name__ = collect_sync.__qualname__ = "collect_sync"
collect_sync.__doc__ = """:func:`collect` from sync code (same arguments): all records, in spec
order (members of a group in order after their spec). Runs its own event loop; inside a running
loop use :func:`collect`.
"""
