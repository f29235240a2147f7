"""A scene's render, split over render workers when it is long (`t2m.render.split`): a dry pass chooses
the animation ranges, each range is its own `render_scene` activity (its own jail, any render
worker, retried alone), and `join_renders` joins them into the clip a whole render would have
made, under the same key. Orchestration only; the fix loop sees one outcome either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import messages as msg
    from workflows import activity_table as act
    from workflows.activity_table import ActivitySpec

Call = Callable[[ActivitySpec[Any, Any], Any], Awaitable[Any]]


async def render(call: Call, request: msg.RenderRequest) -> msg.RenderOutcome:
    """Render `request` whole, or split when its dry pass says so. A low-quality scene never
    is (it renders in seconds), so it skips the dry pass too. The first failed range's outcome
    is the scene's (a code error the fix loop handles)."""
    if request.quality == "low":
        return await call(act.RENDER_SCENE, request)
    plan: msg.RenderPlan = await call(act.PLAN_RENDER, request)
    if not plan.ranges:
        return await call(act.RENDER_SCENE, request)
    ranges = [request.model_copy(update={"span": span}) for span in plan.ranges]
    parts: list[msg.RenderOutcome] = await asyncio.gather(
        *(call(act.RENDER_SCENE, r) for r in ranges)
    )
    failed = next((p for p in parts if not p.ok), None)
    return failed or await call(act.JOIN_RENDERS, msg.JoinRequest(render=request, parts=parts))
