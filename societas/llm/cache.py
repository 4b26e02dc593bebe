"""A persistent response cache, so reruns and resumes replay replies instead of asking again.

Replies live in one SQLite file (WAL journal, so several processes can read
while one writes), keyed by `ChatRequest.key(model)`: the hash of everything
that determines a reply, including the replicate index when temperature > 0.
Lookups are sub-millisecond, so they run on the event loop without threads;
replies that arrive together are stored together, in one transaction right
after the loop's current pass, before anything that used them can be written
(a commit per reply cost more client CPU than the rest of the cache).
Only the reply text, its thinking, its token counts, the options'
log-probabilities when they were asked for (`sampling: distribution`), the
model name and a timestamp are stored: never request headers or credentials.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

from societas.llm.base import ChatModel, ChatRequest, ChatResult, end_conversation

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL,
    reasoning TEXT NOT NULL DEFAULT '',
    option_logprobs TEXT
) WITHOUT ROWID
"""


_INSERT = ("INSERT OR IGNORE INTO responses"
           " (key, text, model, prompt_tokens, completion_tokens, created, reasoning, option_logprobs)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


def _row(key: str, result: ChatResult) -> tuple[object, ...]:
    return (key, result.text, result.model, int(result.prompt_tokens), int(result.completion_tokens), time.time(),
            result.reasoning,
            None if result.option_logprobs is None else json.dumps(list(result.option_logprobs)))


class ResponseCache:
    """Replies by request key in a SQLite file; the first reply stored for a key stays."""

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Autocommit: every put is its own short transaction, visible to other processes at once.
        self._conn = sqlite3.connect(
            str(self.path), timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(responses)")}
            if "reasoning" not in columns:  # a cache written before reasoning was kept
                self._conn.execute("ALTER TABLE responses ADD COLUMN reasoning TEXT NOT NULL DEFAULT ''")
            if "option_logprobs" not in columns:  # before options' distributions were kept
                self._conn.execute("ALTER TABLE responses ADD COLUMN option_logprobs TEXT")
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise sqlite3.DatabaseError(f"response cache {self.path}: {exc}") from exc
        self._pending: dict[str, ChatResult] = {}  # put_soon's replies not yet written

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

    def get(self, key: str) -> ChatResult | None:
        """The stored reply for `key` as a cache hit, or None."""
        waiting = self._pending.get(key)
        if waiting is not None:
            return ChatResult(text=waiting.text, model=waiting.model, prompt_tokens=waiting.prompt_tokens,
                              completion_tokens=waiting.completion_tokens, cache_hit=True,
                              reasoning=waiting.reasoning, option_logprobs=waiting.option_logprobs)
        with self._lock:
            row = self._conn.execute(
                "SELECT text, model, prompt_tokens, completion_tokens, reasoning, option_logprobs"
                " FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        text, model, prompt_tokens, completion_tokens, reasoning, options = row
        return ChatResult(
            text=text, model=model, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, latency_s=0.0, cache_hit=True, reasoning=reasoning,
            option_logprobs=None if options is None else tuple(json.loads(options)),
        )

    def put(self, key: str, result: ChatResult) -> None:
        """Store a reply unless one is already stored for `key` (another process may have won)."""
        with self._lock:
            self._conn.execute(_INSERT, _row(key, result))

    def put_soon(self, key: str, result: ChatResult) -> None:
        """Store a reply after the running event loop's current pass, with the others put meanwhile.

        Whatever used the reply (an episode, a Parquet part) runs after that pass, so no
        recorded reply is missing from the cache; outside a loop this is `put`.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.put(key, result)
            return
        if not self._pending:
            loop.call_soon(self._flush_logged)
        self._pending.setdefault(key, result)

    def flush(self) -> None:
        """Write the replies `put_soon` holds, in one transaction."""
        if not self._pending:
            return
        rows = [_row(k, r) for k, r in self._pending.items()]
        self._pending = {}
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(_INSERT, rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except sqlite3.Error as exc:
            # A cache that cannot be written costs a rerun its speed, not these replies.
            log.warning("response cache %s: could not store replies: %s", self.path, exc)

    def __len__(self) -> int:
        self.flush()
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def __contains__(self, key: object) -> bool:
        if key in self._pending:
            return True
        with self._lock:
            return self._conn.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone() is not None

    def close(self) -> None:
        self._flush_logged()
        with self._lock:
            self._conn.close()


class CachedModel:
    """Answer from `cache` when it holds the request, else ask `inner` and store the reply.

    The key is `request.key(inner.name)`, with `salt` (what else shapes the reply,
    such as the constraint mode `llm.structured_outputs`) joined to the name when
    given. Failures are not stored, so a rerun asks again; a hit reports the
    recorded tokens and the lookup's latency.
    """

    def __init__(self, inner: ChatModel, cache: ResponseCache, *, salt: str = "") -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self._key_name = f"{inner.name}|{salt}" if salt else inner.name

    def __repr__(self) -> str:
        return f"CachedModel({self.inner!r}, {self.cache!r})"

    async def complete(self, request: ChatRequest) -> ChatResult:
        t0 = time.perf_counter()
        key = request.key(self._key_name)
        hit = self.cache.get(key)
        if hit is not None:
            hit.latency_s = time.perf_counter() - t0
            return hit
        result = await self.inner.complete(request)
        self.cache.put_soon(key, result)
        return result

    def end_conversation(self, conversation: str) -> None:
        end_conversation(self.inner, conversation)

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            self.cache.close()
