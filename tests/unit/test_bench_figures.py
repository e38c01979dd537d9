"""bench/README-figures.md holds one section per benchmark script and hand-written notes:
a script writing its figures replaces its own section and keeps everything else."""

from __future__ import annotations

from pathlib import Path

from bench.common import FIGURES_FILE, write_section

CONTROL_BEGIN = "<!-- bench/control_plane.py: begin -->"
CONTROL_END = "<!-- bench/control_plane.py: end -->"
FULL_BEGIN = "<!-- bench/full_job.py: begin -->"
FULL_END = "<!-- bench/full_job.py: end -->"


def figures(control: str, notes: str, full_job: str) -> str:
    return (
        f"{CONTROL_BEGIN}\n{control}\n{CONTROL_END}\n\n{notes}\n\n{FULL_BEGIN}\n{full_job}\n"
        f"{FULL_END}\n"
    )


def test_own_section_replaced_others_kept(tmp_path: Path) -> None:
    path = tmp_path / "figures.md"
    path.write_text(figures("old control table", "## Findings\nhand-written", "full job table"))

    write_section("# new control table\n| a | b |\n", path, "control_plane.py")

    expected = figures(
        "# new control table\n| a | b |", "## Findings\nhand-written", "full job table"
    )
    assert path.read_text() == expected


def test_section_in_the_middle_replaced_in_place(tmp_path: Path) -> None:
    path = tmp_path / "figures.md"
    path.write_text(figures("control table", "notes", "old full job"))

    write_section("new full job", path, "full_job.py")
    write_section("newer full job", path, "full_job.py")

    assert path.read_text() == figures("control table", "notes", "newer full job")


def test_first_section_appended(tmp_path: Path) -> None:
    path = tmp_path / "figures.md"
    path.write_text("# Notes\n\nkept\n")

    write_section("cluster table", path, "cluster.py")

    text = path.read_text()
    assert text == (
        "# Notes\n\nkept\n\n<!-- bench/cluster.py: begin -->\ncluster table\n"
        "<!-- bench/cluster.py: end -->\n"
    )


def test_missing_file_created(tmp_path: Path) -> None:
    path = tmp_path / "figures.md"
    write_section("table", path, "full_job.py")
    assert path.read_text() == f"{FULL_BEGIN}\ntable\n{FULL_END}\n"


def test_committed_figures_have_each_writer_s_markers_once() -> None:
    text = FIGURES_FILE.read_text(encoding="utf-8")
    for marker in (CONTROL_BEGIN, CONTROL_END, FULL_BEGIN, FULL_END):
        assert text.count(marker) == 1, marker
    assert text.index(CONTROL_END) < text.index("## Findings") < text.index(FULL_BEGIN)
