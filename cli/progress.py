"""Live terminal progress for one job (rich): a bar for the job and a line per scene."""

from __future__ import annotations

from types import TracebackType
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from t2m.budget import spent_against
from t2m.models import JobStatus

STATE_STYLE = {
    "pending": "dim",
    "generating_code": "cyan",
    "rendering": "yellow",
    "fixing": "magenta",
    "narrating": "blue",
    "done": "green",
    "failed": "red",
}


class ProgressView:
    def __init__(self, job_id: str, stream: TextIO) -> None:
        self.console = Console(file=stream)
        self.bar = Progress(
            TextColumn("[bold]{task.fields[stage]:<16}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.task = self.bar.add_task(job_id, total=100, stage="queued")
        self.scenes = Table.grid(padding=(0, 2))
        self.live = Live(Group(self.bar), console=self.console, refresh_per_second=4)
        self.job_id = job_id

    def __enter__(self) -> ProgressView:
        self.console.print(f"Job [bold]{self.job_id}[/bold]")
        self.live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live.__exit__(exc_type, exc, tb)
        if not self.console.is_terminal:  # a log or pipe gets the last frame without a newline
            self.console.line()

    def update(self, status: JobStatus) -> None:
        stage = status.current_stage if status.status == "running" else status.status
        self.bar.update(self.task, completed=status.percentage, stage=stage)
        table = Table.grid(padding=(0, 2))
        for s in status.scenes:
            style = STATE_STYLE.get(s.state, "")
            attempts = f"attempt {s.attempts}" if s.attempts > 1 else ""
            table.add_row(
                f"  scene {s.index + 1}", s.title, f"[{style}]{s.state}[/{style}]", attempts
            )
        if status.max_cost_usd is not None:
            spent = spent_against(status.max_cost_usd, status.spent_usd)
            table.add_row("  model", f"{spent} spent", "", "")
        self.live.update(Group(self.bar, table))
