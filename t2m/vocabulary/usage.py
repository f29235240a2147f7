"""What a job's model calls used: calls, tokens and cost, per stage and in all."""

from __future__ import annotations

from pydantic import BaseModel


class Usage(BaseModel):
    """Model calls, tokens and cost (USD, where litellm knows the model's price)."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def plus(self, other: Usage) -> Usage:
        return Usage(**{f: getattr(self, f) + getattr(other, f) for f in Usage.model_fields})


class UsageSummary(BaseModel):
    """Usage per stage and for the whole job, as stored in the catalog and shown in status."""

    stages: dict[str, Usage]
    total: Usage


def usage_summary(per_stage: dict[str, Usage]) -> UsageSummary:
    total = Usage(**{f: sum(getattr(u, f) for u in per_stage.values()) for f in Usage.model_fields})
    return UsageSummary(stages=per_stage, total=total)
