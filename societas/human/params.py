"""What a `policy: human` member may set in its `params`, checked when a config loads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class DebriefQuestion(BaseModel):
    """A question put to the person after each episode (e.g. "was the other player a human?").

    The answer is one of `choices`, recorded in the episodes table's `summary`
    under `debrief.<key>`; a seat left idle past its timeout records None.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    text: str = Field(min_length=1)
    choices: tuple[str, ...] = Field(min_length=2)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"choices repeat an answer: {list(v)}")
        return v


class HumanParams(BaseModel):
    """A human seat's settings: its idle timeout (else the config's `human.timeout_s`) and debrief."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float | None = Field(default=None, gt=0)
    debrief: tuple[DebriefQuestion, ...] = ()

    @field_validator("debrief")
    @classmethod
    def _keys(cls, v: tuple[DebriefQuestion, ...]) -> tuple[DebriefQuestion, ...]:
        keys = [q.key for q in v]
        if len(set(keys)) != len(keys):
            raise ValueError(f"debrief keys repeat: {keys}")
        return v


def human_params(params: Mapping[str, Any] | None) -> HumanParams:
    """`params` of a human member, or ValueError naming the field (one line)."""
    try:
        return HumanParams.model_validate(dict(params or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        msg = "unknown key (accepted: timeout_s, debrief)" if first["type"] == "extra_forbidden" else first["msg"]
        raise ValueError(f"params.{where}: {msg.removeprefix('Value error, ')}") from None
