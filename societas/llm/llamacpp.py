"""llama.cpp servers: what they honour, how to recognise one, and the GBNF grammars it reads.

Both OpenAI-compatible servers of llama.cpp, `llama-server` (C++) and the
`llama-cpp-python[server]` package, ignore vLLM's `structured_outputs`, and
answer a `response_format` of type `json_schema` with HTTP 500 ("Input should
be 'text' or 'json_object'"). They do honour a GBNF `grammar` in the body and a
`response_format` of type `json_object` with a `schema`. So under llama.cpp a
choice, a number range or an answer after a marker is a grammar (the reply stays
the plain text the model would write, as under vLLM's choice constraint), a
pattern is a grammar too (`gbnf_regex`; one it cannot express is sent
unconstrained when it follows a marker), and a JSON spec is a `json_object`
schema, turned back into plain text by `constraints.reply_text`.

The text before a marker is bounded (`free_chars`): at most as many characters as
the request's max_tokens leaves once the marker and a short answer are counted,
so the reply always reaches the marker before the server cuts it off (a token
holds at least one character, bar the byte pieces of rare characters). Unbounded,
a small model reasons until max_tokens and never writes the marker.

Sampling: both servers add stages of their own (a repetition penalty, top-k, min-p); requests
turn them off (`NEUTRAL_SAMPLING`) so that temperature 0 is plain greedy decoding, as under `hf:`.

Recognising one: `llama-server` lists its models as owned by "llamacpp" and
answers GET /props (with `total_slots`); `llama-cpp-python` lists them as owned
by "me" and serves one request at a time, so it is sent one at a time: a request waiting
in its queue would count its wait against its timeout.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from societas.llm.constraints import number_regex
from societas.llm.gbnf_regex import Unsupported, regex_to_gbnf
from societas.types import ActionSpec

if TYPE_CHECKING:
    from societas.llm.servers import ServerOptions

LLAMA_SERVER_COMMAND = "llama-server -m {model} --host {host} --port {port} --parallel 4 {args}"
PYTHON_SERVER_COMMAND = ("{python} -m societas.llm.llamacpp_server --model {model} --host {host} --port {port} "
                         "--n_ctx 8192 {args}")

LLAMACPP_OWNERS = frozenset({"llamacpp", "me"})
"""`owned_by` values GET /models reports on llama-server and on llama-cpp-python's server."""

MAX_ENUMERATED = 200
NEUTRAL_SAMPLING: dict[str, float] = {"repeat_penalty": 1.0, "top_k": 0, "min_p": 0.0, "top_p": 1.0}
"""Sampler stages llama.cpp's servers add unless a request turns them off: llama-cpp-python's server
penalises tokens seen in the last 64 by 1.1 (its repeat_penalty default; at temperature 0 that
changes greedy replies), and both servers keep only the top 40 tokens, those above 5% of the
best one's probability and the top 95% of the mass when sampling. Sent off, a request means what
its temperature and top_p say, as under hf: and vLLM; a request's own top_p stays."""
LLAMACPP_IN_FLIGHT = 4
"""Requests sent at once to llama-server: its slot count as `LLAMA_SERVER_COMMAND` starts it."""
LOCAL_TIMEOUT_S = 300.0
"""The least a `llamacpp:PATH` request waits for its reply (llm.timeout_s when longer): the server it
starts serves one request at a time on this machine's CPU, where a 200-token reply took 30-55 s on 2
loaded cores, close to the 60 s default; a server that died is found by its supervisor's checks."""
ONE_SLOT_OWNER = "me"
"""`owned_by` of llama-cpp-python's server, which serves one request at a time and queues the rest."""


def is_llamacpp_owner(owners: list[Any] | None) -> bool:
    return owners is not None and any(o in LLAMACPP_OWNERS for o in owners)


def llamacpp_slots(owners: list[Any] | None) -> int:
    """Requests a llama.cpp server serves at once, judged by who owns its models: 1 on llama-cpp-python's."""
    return 1 if owners is not None and ONE_SLOT_OWNER in owners else LLAMACPP_IN_FLIGHT


def gbnf_literal(text: str) -> str:
    """A GBNF string literal for `text`."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _number_rule(spec: ActionSpec) -> str | None:
    lo, hi = spec.minimum, spec.maximum
    if lo is None or hi is None:
        return None
    if spec.kind == "integer":
        first, last = math.ceil(lo), math.floor(hi)
        if 0 <= last - first < MAX_ENUMERATED:
            return " | ".join(gbnf_literal(str(v)) for v in range(first, last + 1))
    if spec.kind == "real":  # the regex vLLM and hf: hold, whole parts enumerated (constraints.number_regex)
        return regex_to_gbnf(number_regex(spec))
    width = max(len(str(math.floor(abs(x)))) for x in (lo, hi))
    return ("\"-\"? " if lo < 0 else "") + "[0-9]" + " [0-9]?" * (max(1, width) - 1)


DEFAULT_MAX_TOKENS = 256
"""The reply length a free-text bound assumes when a request sets no max_tokens (as `hf:`'s default)."""
ANSWER_ROOM = 24
"""Tokens kept for the answer after its marker, besides the marker itself."""
MAX_FREE_CHARS = 1900
"""Largest bound on the text before a marker: llama.cpp's grammar parser refuses (or, in later
versions, drops) a repetition count of 2000 or more."""


def free_chars(spec: ActionSpec, max_tokens: int | None) -> int:
    """How many characters of free text a marker grammar allows before `spec.answer_marker`.

    max_tokens less the marker's characters, a space and `ANSWER_ROOM`: with at least one character
    per token, the marker comes before the reply is cut off, and the answer has room after it.
    """
    budget = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    return max(0, min(MAX_FREE_CHARS, budget - len(spec.answer_marker or "") - 1 - ANSWER_ROOM))


def grammar(spec: ActionSpec, lead: str = "", max_tokens: int | None = None) -> str | None:
    """A GBNF grammar whose sentences are the replies `spec.parse` accepts, or None if none fits.

    With an `answer_marker`, free text comes first (room to reason, at most `free_chars` characters
    for `max_tokens`), then the marker, then the answer.
    A `lead` ("Option") is written before a choice, as the prompt implies.
    """
    if spec.kind == "choice":
        answer: str | None = " | ".join(gbnf_literal(c) for c in spec.choices)
    elif spec.kind in ("integer", "real"):
        answer = _number_rule(spec)
    elif spec.kind == "regex" and spec.pattern:
        try:
            answer = regex_to_gbnf(spec.pattern)
        except Unsupported:
            answer = None
    else:
        answer = None
    if answer is None:
        return None
    if spec.answer_marker is None and lead and spec.kind == "choice":
        return f"root ::= {gbnf_literal(lead + ' ')} ({answer})\n"
    if spec.answer_marker is None:
        return f"root ::= {answer}\n"
    n = free_chars(spec, max_tokens)
    head = f"root ::= free {gbnf_literal(spec.answer_marker)}" if n else f"root ::= {gbnf_literal(spec.answer_marker)}"
    free = f"free ::= [^\\x00]{{0,{n}}}\n" if n else ""
    return f"{head} \" \"? answer\nanswer ::= {answer}\n{free}"


def choices_of(grammar_text: str) -> list[str] | None:
    """The options of a plain choice grammar made by `grammar` (for the fake server), else None."""
    line = grammar_text.strip()
    if "\n" in line or not line.startswith("root ::= "):
        return None
    line = line[len("root ::= "):]
    if line.endswith(")") and " (" in line:  # a lead, then the options
        line = line[line.index(" (") + 2 : -1]
    out = []
    for part in line.split(" | "):
        part = part.strip()
        if len(part) < 2 or part[0] != '"' or part[-1] != '"':
            return None
        out.append(part[1:-1].replace('\\"', '"').replace("\\\\", "\\"))
    return out


def sampling_fields(top_p: float | None) -> dict[str, float]:
    """`NEUTRAL_SAMPLING`, with the request's own top_p when it sets one."""
    return NEUTRAL_SAMPLING if top_p is None else {**NEUTRAL_SAMPLING, "top_p": top_p}


def body_extras(spec: ActionSpec | None, lead: str = "", max_tokens: int | None = None) -> dict[str, Any]:
    """Body fields that constrain a llama.cpp server's reply to `spec` ({} when nothing applies)."""
    if spec is None or spec.kind == "text":
        return {}
    text = grammar(spec, lead, max_tokens)
    if text is not None:
        return {"grammar": text}
    if spec.kind in ("json", "regex") and spec.answer_marker is not None:
        return {}  # text, then a marker: no JSON reply fits (and a pattern no grammar could hold)
    return {"response_format": {"type": "json_object", "schema": spec.json_schema()}}


def server_command() -> str:
    """How `llamacpp:` starts a server: a `llama-server` binary on PATH, else llama-cpp-python's server."""
    return LLAMA_SERVER_COMMAND if shutil.which("llama-server") else PYTHON_SERVER_COMMAND


def server_options(options: ServerOptions | None) -> ServerOptions:
    """`llm.servers` for a `llamacpp:` spec: its command unless one is set; one replica unless set."""
    from societas.llm.servers import ServerOptions

    options = options or ServerOptions()
    return replace(options, command=options.command or server_command(), replicas=options.replicas or 1,
                   startup_timeout_s=min(options.startup_timeout_s, 300.0))
