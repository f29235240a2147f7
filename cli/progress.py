"""Live progress of one job on stderr, for `t2m generate` and `t2m jobs status --follow`.

On a terminal: a rich progress bar (stage, bar, percentage, elapsed time) and a line per scene,
redrawn on every change and cleared at the end, so that the command's final line is the only one
left. Elsewhere (a pipe, a log file): one line per change (stage, percentage, scenes, spend), never
for the end, which the command reports itself.
"""

from __future__ import annotations

from collections import Counter
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from t2m.budget import spent_against
from t2m.vocabulary.job import TERMINAL_STATUSES, JobStatus, SceneStatus

STATE_STYLE = {
    "pending": "dim",
    "generating_code": "cyan",
    "rendering": "yellow",
    "fixing": "magenta",
    "narrating": "blue",
    "done": "green",
    "failed": "red",
    "cancelled": "red",
}


def from_api(s: dict[str, Any]) -> JobStatus:
    """The API's status answer as the workflow's `JobStatus`, so one view shows both. Scenes are
    taken as they come (a newer server may name states this CLI does not know)."""
    p, budget = s["progress"], s.get("budget") or {}
    fields = ("index", "title", "state", "attempts", "error")
    return JobStatus(
        job_id=s["job_id"],
        status=s["status"],
        percentage=p["percentage"],
        current_stage=p["current_stage"],
        stages_completed=p.get("stages_completed", []),
        scenes=[
            SceneStatus.model_construct(**{k: sc.get(k) for k in fields})
            for sc in p.get("scenes", [])
        ],
        error=s.get("error"),
        reused_from=s.get("reused_from"),
        max_cost_usd=budget.get("max_cost_usd"),
        spent_usd=budget.get("spent_usd", 0.0),
        retryable=s.get("retryable"),
        held=s.get("held"),
    )


def progress_line(status: JobStatus) -> str:
    """One line: `JOB: running, rendering 45%, scenes 2/4 done, $0.01 of $0.10 spent`."""
    stage = "" if status.current_stage == status.status else f", {status.current_stage}"
    line = f"{status.job_id}: {status.status}{stage} {status.percentage:.0f}%"
    if status.scenes:
        states = Counter(s.state for s in status.scenes)
        line += f", scenes {states['done']}/{len(status.scenes)} done"
        if busy := [
            f"{n} {state}" for state, n in states.items() if state not in ("done", "pending")
        ]:
            line += f" ({', '.join(busy)})"
    if status.max_cost_usd is not None:
        line += f", {spent_against(status.max_cost_usd, status.spent_usd)} spent"
    if status.held:
        line += f" ({status.held})"
    return line


class ProgressView:
    def __init__(self, job_id: str, stream: TextIO) -> None:
        self.console = Console(file=stream, highlight=False)
        self.live_bar = self.console.is_terminal and not self.console.is_dumb_terminal
        self.bar = Progress(
            TextColumn("[bold]{task.fields[stage]:<16}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.task = self.bar.add_task(job_id, total=100, stage="queued")
        self.live = Live(
            Group(self.bar), console=self.console, refresh_per_second=8, transient=True
        )
        self.job_id = job_id
        self.last_line = ""

    def __enter__(self) -> ProgressView:
        if self.live_bar:
            self.console.print(f"Job [bold]{self.job_id}[/bold]")
            self.live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live_bar:
            self.live.__exit__(exc_type, exc, tb)

    def update(self, status: JobStatus) -> None:
        if not self.live_bar:
            line = progress_line(status)
            if line != self.last_line and status.status not in TERMINAL_STATUSES:
                self.console.print(escape(line), soft_wrap=True)
            self.last_line = line
            return
        stage = status.current_stage if status.status == "running" else status.status
        self.bar.update(self.task, completed=status.percentage, stage=stage)
        table = Table.grid(padding=(0, 2))
        for s in status.scenes:
            style = STATE_STYLE.get(s.state, "default")
            attempts = f"attempt {s.attempts}" if s.attempts > 1 else ""
            title = escape(s.title)
            table.add_row(f"  scene {s.index + 1}", title, f"[{style}]{s.state}[/]", attempts)
        if status.max_cost_usd is not None:
            spent = spent_against(status.max_cost_usd, status.spent_usd)
            table.add_row("  model", f"{spent} spent", "", "")
        self.live.update(Group(self.bar, table), refresh=True)
