"""Progress bars for a followed job: the whole job, and one bar per stage."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
)

from cli.follow import FollowState


class JobProgress:
    """A live display of `FollowState`: `update` is `follow`'s `on_message`. Lines worth
    keeping (stages starting and ending, failures) print above the bars."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TaskProgressColumn(),
            console=console,
        )
        self.job_task = self.progress.add_task("job", total=100.0)
        self.stage_tasks: dict[str, TaskID] = {}

    def __enter__(self) -> JobProgress:
        self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def update(self, state: FollowState, note: str | None) -> None:
        if note:
            self.progress.console.print(f"  {note}", markup=False, highlight=False)
        self.progress.update(
            self.job_task, completed=state.progress, description=f"job {state.status or ''}"
        )
        for stage, fraction in state.stages.items():
            task = self.stage_tasks.get(stage)
            if task is None:
                task = self.stage_tasks[stage] = self.progress.add_task(f"  {stage}", total=1.0)
            self.progress.update(task, completed=fraction)
