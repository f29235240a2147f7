"""t2m's own worker metrics, recorded through the Temporal SDK's metric meter.

One activity interceptor reads what t2m's activities already return — a `RenderOutcome` from
`render_scene`, a `Usage` on every model activity's result — so no activity carries metrics code.
Through `activity.metric_meter()` the counters land in the SDK's runtime: on the worker's one
Prometheus endpoint beside the SDK's own metrics (`worker.py`, `T2M_WORKER_METRICS_PORT`), labelled
with namespace, task queue and activity type; with no metrics configured the meter is a no-op.

Names (Prometheus): `t2m_renders{outcome=ok|failed|reused}`, `t2m_render_seconds` (histogram,
new renders only), `t2m_fix_attempts`, `t2m_layout_findings`, `t2m_model_calls`,
`t2m_model_cached_calls`, `t2m_model_tokens{kind=prompt|completion}`, `t2m_model_cost_usd`
(histogram of USD per model activity: its `_sum` is the spend).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities.messages import RenderOutcome
from t2m.vocabulary.request import VideoRequest
from t2m.vocabulary.usage import Usage

log = logging.getLogger("t2m.metrics")

HISTOGRAM_BUCKETS: dict[str, list[float]] = {
    "t2m_render_seconds": [1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
    "t2m_model_cost_usd": [0.0001, 0.001, 0.01, 0.05, 0.1, 0.5, 1, 5],
}
"""Bucket boundaries for t2m's histograms (the SDK's defaults suit milliseconds)."""


def _model_of(arg: object) -> str:
    if isinstance(arg, VideoRequest):
        return arg.planner_model or arg.model
    model = getattr(arg, "model", None)
    return model if isinstance(model, str) else "unknown"


def record(meter: MetricMeter, name: str, arg: object, result: Any, seconds: float) -> None:
    """Count what one finished activity did, from its argument and its result."""
    if isinstance(result, RenderOutcome):
        outcome = "reused" if result.reused else ("ok" if result.ok else "failed")
        labels = {"outcome": outcome, "quality": str(getattr(arg, "quality", ""))}
        meter.create_counter("t2m_renders", "Scene renders, by outcome").add(1, labels)
        if not result.reused:
            meter.create_histogram_float(
                "t2m_render_seconds", "Wall time of new scene renders", "s"
            ).record(seconds, labels)
        meter.create_counter("t2m_layout_findings", "Layout check findings in rendered scenes").add(
            len(result.layout_issues), labels
        )
    if name == "fix_scene_code":
        meter.create_counter("t2m_fix_attempts", "Model fixes of scene code").add(1)
    usage = getattr(result, "usage", None)
    if isinstance(usage, Usage):
        model = {"model": _model_of(arg)}
        meter.create_counter("t2m_model_calls", "Model calls").add(usage.calls, model)
        meter.create_counter("t2m_model_cached_calls", "Model calls answered from the cache").add(
            usage.cached_calls, model
        )
        tokens = meter.create_counter("t2m_model_tokens", "Model tokens", "tokens")
        tokens.add(usage.prompt_tokens, model | {"kind": "prompt"})
        tokens.add(usage.completion_tokens, model | {"kind": "completion"})
        meter.create_histogram_float(
            "t2m_model_cost_usd", "Model cost (USD) per model activity", "USD"
        ).record(usage.cost_usd, model)


class MetricsInterceptor(Interceptor):
    """Put on every t2m activity worker: records `record` after each activity that returns."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Recording(next)


class _Recording(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        started = time.monotonic()
        result = await self.next.execute_activity(input)
        try:
            arg = input.args[0] if input.args else None
            info = activity.info()
            record(
                activity.metric_meter(), info.activity_type, arg, result, time.monotonic() - started
            )
        except Exception:  # a metric must never fail the work it measures
            log.exception("could not record metrics")
        return result
