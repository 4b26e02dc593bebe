"""Language-model agents: prompt, ask, parse, retry with the error shown, fall back.

Prompts are laid out for prefix caching: the environment's static rules first,
then the persona, then the history and question, byte-identical across calls.
"""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from societas.errors import BadInput
from societas.llm.base import ChatModel, ChatRequest, end_conversation
from societas.llm.distribution import NoDistribution, OptionDistribution, known_distribution, shared_distribution
from societas.types import Action, ActionSpec, InvalidAction, LLMCall, Observation, split_reasoning

RETRY_PROMPT = "Your answer could not be used: {error} Please answer the question again."
THINK_PROMPT = "Before you answer, think it through step by step: say what you weigh and which answer you lean to."
FINAL_PROMPT = "Now give your final answer."

Reasoning = Literal["none", "two_turn"]
REASONING_MODES: tuple[str, ...] = ("none", "two_turn")
Sampling = Literal["reply", "distribution"]
SAMPLING_MODES: tuple[str, ...] = ("reply", "distribution")

# Numbers the agents of this process, so each agent's conversation has a key of its own (see `LLMAgent`).
_CONVERSATIONS = itertools.count()


@dataclass(frozen=True, kw_only=True, slots=True)
class LLMAgentOptions:
    """How a language-model agent asks. `max_attempts` counts the first try."""

    persona: str | None = None
    temperature: float = 0.0
    max_tokens: int | None = None
    max_attempts: int = 3
    social_chain_of_thought: bool = False
    send_seed: bool = False
    # "two_turn": a free-text turn to reason in (purpose "reasoning"), then the constrained answer.
    reasoning: Reasoning = "none"
    reasoning_max_tokens: int | None = None  # the reasoning turn's; `max_tokens` bounds the answer's
    # "distribution": a choice is drawn with this agent's generator from the model's probabilities of the
    # options, asked once per distinct prompt and shared (societas.llm.distribution).
    sampling: Sampling = "reply"


@dataclass(slots=True)
class _Answer:
    value: object
    valid: bool
    retries: int
    reply: str | None


class LLMAgent:
    """An agent whose decisions come from a chat model.

    Its requests carry one `conversation` key for the agent's episode (agents
    are built per episode), so a backend that keeps a conversation's state
    between requests (hf:'s prefix reuse) can find it; `end_episode` frees it.
    The key never shapes a reply.
    """

    kind = "llm"
    # Slots, and caches made on first use: a population holds a million of these.
    __slots__ = (
        "__weakref__",
        "_client",
        "_conversation",
        "_distribution",
        "_params_cache",
        "_policy_tag",
        "_rng",
        "_system_cache",
        "model",
        "name",
        "options",
        "policy",
    )

    def __init__(
        self,
        name: str,
        model: ChatModel,
        *,
        rng: np.random.Generator,
        options: LLMAgentOptions | None = None,
        policy: str = "llm",
    ) -> None:
        self.name = name
        self.policy = policy
        self.model = model.name
        self._client = model
        self._rng = rng
        self.options = options or LLMAgentOptions()
        if self.options.reasoning not in REASONING_MODES:
            raise ValueError(f"reasoning must be one of {', '.join(REASONING_MODES)}; got {self.options.reasoning!r}")
        self._policy_tag = "" if self.options.reasoning == "none" else f"reasoning={self.options.reasoning}"
        if self.options.sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLING_MODES)}; got {self.options.sampling!r}")
        self._distribution = self.options.sampling == "distribution"
        self._system_cache: tuple[str, dict[str, str]] | None = None
        self._params_cache: dict[int, tuple[ActionSpec | None, int, int | None, dict[str, Any]]] | None = None
        self._conversation = next(_CONVERSATIONS)

    @property
    def conversation(self) -> str:
        """This agent's conversation key: its name and a number of its own in this process."""
        return f"{self.name}#{self._conversation}"

    def end_episode(self) -> None:
        """The episode is over: the model may free what it kept of this agent's conversation."""
        end_conversation(self._client, self.conversation)

    def _system(self, rules: str) -> dict[str, str]:
        """The system message; the same rules recur every round, so the same object is handed out."""
        cached = self._system_cache
        if cached is not None and (cached[0] is rules or cached[0] == rules):
            return cached[1]
        message = _system_message(rules, self.options.persona)
        self._system_cache = (rules, message)
        return message

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        """`request.params()`, the same object while nothing in it changes (the recorder encodes it once).

        Keyed by the spec object (an environment keeps a few per seat); each entry
        holds its spec, so an id is never mistaken for a newer object's.
        """
        spec = request.constraint
        cache = self._params_cache
        if cache is None:
            cache = self._params_cache = {}
        cached = cache.get(id(spec))
        if (cached is not None and cached[0] is spec and cached[1] == request.replicate
                and cached[2] == request.seed):
            return cached[3]
        params = request.params()
        if len(cache) >= 64:
            cache.clear()
        cache[id(spec)] = (spec, request.replicate, request.seed, params)
        return params

    def decide_now(self, observation: Observation) -> Action | None:
        """The decision, where it needs no model call: `sampling: distribution` on a prompt whose
        distribution is known and nothing asked before it. None otherwise (then `act`).

        The same action `act` gives (the same draw from this agent's generator), without a coroutine:
        at population scale nearly every decision is one of these.
        """
        spec = observation.spec
        if not self._distribution or spec.kind != "choice" or self.options.reasoning != "none" or (
                self.options.social_chain_of_thought and observation.prediction is not None):
            return None
        system = self._system(observation.system)
        key = ((system["content"], observation.prompt), spec, self.options.max_tokens, self._policy_tag)
        dist = known_distribution(self._client, key)
        return None if dist is None else self._drawn(dist, spec, None, None, 0)

    def _drawn(self, dist: OptionDistribution, spec: ActionSpec, prediction: Any, prediction_valid: bool | None,
               extra_retries: int) -> Action:
        """A draw from a known distribution: no call of this decision's own."""
        temperature = self.options.temperature
        index, probability = dist.draw(float(self._rng.random()) if temperature > 0 else 0.0, temperature)
        return Action(value=spec.choices[index], policy=self.policy, model=self.model, retries=extra_retries,
                      prediction=prediction, prediction_valid=prediction_valid, cache_hit=True,
                      sampled_p=probability)

    async def act(self, observation: Observation) -> Action:
        calls: list[LLMCall] = []
        prediction = None
        prediction_valid = None
        extra_retries = 0
        prefix: list[dict[str, str]] = [self._system(observation.system)]
        if self.options.social_chain_of_thought and observation.prediction is not None:
            q = observation.prediction
            pred = await self._ask(prefix, q.prompt, q.spec, calls, "prediction")
            prediction_valid = pred.valid
            extra_retries = pred.retries
            if pred.valid:
                # The model's own words go into the conversation, never a stand-in for them:
                # a prediction that failed is recorded as missing and the action is asked afresh.
                prediction = pred.value
                prefix = [*prefix, {"role": "user", "content": q.prompt},
                          {"role": "assistant", "content": pred.reply or str(pred.value)}]
        prompt = observation.prompt
        if self.options.reasoning == "two_turn":
            prefix, prompt = await self._reason(prefix, prompt, calls)
        if self._distribution and observation.spec.kind == "choice":
            return await self._sample(prefix, prompt, observation.spec, calls, prediction, prediction_valid,
                                      extra_retries)
        answer = await self._ask(prefix, prompt, observation.spec, calls, "action")
        if prediction_valid is not None:
            return self._combined(answer, calls, prediction, prediction_valid, extra_retries)
        if len(calls) == 1:  # the usual case: one call, its figures are the decision's
            c = calls[0]
            return Action(
                value=answer.value, policy=self.policy, model=self.model, valid=answer.valid,
                retries=answer.retries, prediction=prediction, latency_s=c.latency_s,
                prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens, cache_hit=c.cache_hit,
                calls=(c,),
            )
        return Action(
            value=answer.value,
            policy=self.policy,
            model=self.model,
            valid=answer.valid,
            retries=answer.retries,
            prediction=prediction,
            latency_s=sum(c.latency_s for c in calls),
            prompt_tokens=sum(c.prompt_tokens for c in calls),
            completion_tokens=sum(c.completion_tokens for c in calls),
            cache_hit=bool(calls) and all(c.cache_hit for c in calls),
            calls=tuple(calls),
        )

    def _combined(self, answer: _Answer, calls: list[LLMCall], prediction: Any, prediction_valid: bool,
                  extra_retries: int) -> Action:
        """A decision that asked for a prediction first: its retries count both questions'."""
        return Action(
            value=answer.value, policy=self.policy, model=self.model, valid=answer.valid,
            retries=answer.retries + extra_retries, prediction=prediction, prediction_valid=prediction_valid,
            latency_s=sum(c.latency_s for c in calls),
            prompt_tokens=sum(c.prompt_tokens for c in calls),
            completion_tokens=sum(c.completion_tokens for c in calls),
            cache_hit=bool(calls) and all(c.cache_hit for c in calls),
            calls=tuple(calls),
        )

    async def _sample(self, prefix: list[dict[str, str]], prompt: str, spec: ActionSpec, calls: list[LLMCall],
                      prediction: Any, prediction_valid: bool | None, extra_retries: int) -> Action:
        """A choice drawn from the model's distribution over the options (`sampling: distribution`).

        The request is the action's, asked greedily for the options' log-probabilities (so a
        constrained engine writes the options as the model most likely tokenizes them; the
        log-probabilities are the model's own, before any temperature); the agent's temperature
        shapes the draw. Only the decision whose request was sent records the
        call (with purpose "distribution"); the others cost no tokens, and every one records the
        probability of what it drew.
        """
        opts = self.options
        # What makes the request (cheaper to hash than its JSON); the usual prefix is the system message alone.
        said = ((prefix[0]["content"], prompt) if len(prefix) == 1
                else (*((m["role"], m["content"]) for m in prefix), prompt))
        key = (said, spec, opts.max_tokens, self._policy_tag)
        dist = known_distribution(self._client, key)
        if dist is not None and not calls:  # the usual case at scale: a prompt seen before, nothing else asked
            return self._drawn(dist, spec, prediction, prediction_valid, extra_retries)
        messages = (*prefix, {"role": "user", "content": prompt})
        request = ChatRequest(messages=messages, temperature=0.0, max_tokens=opts.max_tokens, constraint=spec,
                              option_logprobs=True, policy=_join(self._policy_tag, "sampling=distribution"))
        t0 = time.perf_counter()
        try:
            dist, asked = await shared_distribution(self._client, key, request)
        except NoDistribution as exc:
            raise BadInput(f"sampling: distribution needs the options' log-probabilities (hf: models, vLLM "
                           f"or llama.cpp servers, fake: models): {exc}") from None
        waited = time.perf_counter() - t0
        own = list(calls)
        u = float(self._rng.random()) if opts.temperature > 0 else 0.0
        index, probability = dist.draw(u, opts.temperature)
        if asked:
            calls.append(self._call(request, dist.result, None, 0, "distribution", dist.result.reasoning))
        return Action(
            value=spec.choices[index], policy=self.policy, model=self.model, valid=True, retries=extra_retries,
            prediction=prediction, prediction_valid=prediction_valid,
            # The shared call's tokens are in llm_calls, under the decision that sent it; the events,
            # the same on any runner, carry the tokens of this decision's own calls alone.
            latency_s=waited + sum(c.latency_s for c in own),
            prompt_tokens=sum(c.prompt_tokens for c in own), completion_tokens=sum(c.completion_tokens for c in own),
            cache_hit=not asked or dist.result.cache_hit, calls=tuple(calls), sampled_p=probability,
        )

    async def _reason(self, prefix: list[dict[str, str]], prompt: str,
                      calls: list[LLMCall]) -> tuple[list[dict[str, str]], str]:
        """The free turn of `two_turn`: the question and an invitation to reason, unconstrained.

        Its reply (the thinking in words, think blocks or a reasoning field included) joins the
        conversation, so the constrained answer that follows is asked in its light. A question
        ending in an answer's start ("A: Option") is asked without it, and the final prompt
        ends in it, so the answer starts as the question has it start.
        """
        opts = self.options
        question, _, lead = prompt.rstrip().rpartition("\n")
        if not (question and lead.startswith("A:")):
            question, lead = prompt, ""
        messages = (*prefix, {"role": "user", "content": f"{question}\n\n{THINK_PROMPT}"})
        replicate = int(self._rng.integers(2**31)) if opts.temperature > 0 else 0
        request = ChatRequest(messages=messages, temperature=opts.temperature, max_tokens=opts.reasoning_max_tokens,
                              replicate=replicate, seed=replicate if opts.send_seed else None,
                              policy=self._policy_tag, conversation=self.conversation)
        result = await self._client.complete(request)
        answer, reasoning = self._split(result.text, result.reasoning)
        calls.append(self._call(request, result, None, 0, "reasoning", reasoning))
        said = "\n\n".join(part for part in (reasoning, answer) if part) or result.text
        return [*messages, {"role": "assistant", "content": said}], f"{FINAL_PROMPT}\n{lead}" if lead else FINAL_PROMPT

    @staticmethod
    def _split(text: str, reasoning: str) -> tuple[str, str]:
        """A reply's visible answer and its thinking: a reasoning field's, else its think blocks'."""
        if "think>" not in text:
            return text, reasoning
        answer, blocks = split_reasoning(text)
        return answer, reasoning or blocks

    def _call(self, request: ChatRequest, result: Any, error: str | None, attempt: int, purpose: str,
              reasoning: str) -> LLMCall:
        return LLMCall(
            model=self.model, messages=request.messages, params=self._params(request),
            reply=result.text, error=error, latency_s=result.latency_s,
            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
            cache_hit=result.cache_hit, attempt=attempt, purpose=purpose, cached_tokens=result.cached_tokens,
            reasoning=reasoning,
        )

    async def _ask(
        self,
        prefix: list[dict[str, str]],
        prompt: str,
        spec: ActionSpec,
        calls: list[LLMCall],
        purpose: str,
    ) -> _Answer:
        """Ask until the reply parses, showing the model why it did not; then fall back."""
        opts = self.options
        messages = [*prefix, {"role": "user", "content": prompt}]
        max_tokens = reply_tokens(opts.max_tokens, spec)
        for attempt in range(opts.max_attempts):
            replicate = int(self._rng.integers(2**31)) if opts.temperature > 0 else 0
            request = ChatRequest(
                messages=tuple(messages),
                temperature=opts.temperature,
                max_tokens=max_tokens,
                constraint=spec,
                replicate=replicate,
                seed=replicate if opts.send_seed else None,
                policy=self._policy_tag,
                conversation=self.conversation,
            )
            # A request that fails for good (the endpoint, not the model) raises ModelError out of
            # the episode: the run stops and resumes later, and the failure never becomes a move.
            result = await self._client.complete(request)
            error = None
            # Split once: the answer is parsed, the thinking recorded.
            text, reasoning = self._split(result.text, result.reasoning)
            try:
                value = spec.parse_answer(text)
            except InvalidAction as exc:
                error = str(exc)
            calls.append(self._call(request, result, error, attempt, purpose, reasoning))
            if error is None:
                return _Answer(value, True, attempt, result.text)
            messages = [*messages, {"role": "assistant", "content": result.text},
                        {"role": "user", "content": RETRY_PROMPT.format(error=error)}]
        return _Answer(spec.default, False, opts.max_attempts - 1, None)


@functools.lru_cache(maxsize=256)
def _system_message(rules: str, persona: str | None) -> dict[str, str]:
    """One system message object for all agents of the same rules and persona (a population shares it)."""
    return {"role": "system", "content": rules if not persona else f"{rules}\n\n{persona}"}


def reply_tokens(max_tokens: int | None, spec: ActionSpec) -> int | None:
    """The reply length to ask for: the run's `max_tokens`, lowered to the answer's own bound if it has one."""
    if spec.max_tokens is None:
        return max_tokens
    return spec.max_tokens if max_tokens is None else min(max_tokens, spec.max_tokens)


def _join(*tags: str) -> str:
    return ",".join(t for t in tags if t)
