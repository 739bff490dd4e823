"""experiments/sizing_study.py rewrites its report at the top of docs/sizing.md and keeps the
hand-written sections below its marker."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from sizing_study import KEEP_BELOW, kept_below  # noqa: E402


def test_the_study_keeps_the_hand_written_sections():
    old = f"# old report\n\nold table\n\n{KEEP_BELOW}\n\n## A probe\n\nwritten by hand\n"
    new = kept_below("# new report\n\nnew table\n", old)
    assert new.startswith("# new report\n\nnew table") and "old table" not in new
    assert new.endswith(f"{KEEP_BELOW}\n\n## A probe\n\nwritten by hand\n")
    assert kept_below("# first report\n", "").endswith(KEEP_BELOW + "\n")  # no page yet: the marker is added


def test_the_shipped_page_has_the_marker():
    page = (Path(__file__).resolve().parents[1] / "docs" / "sizing.md").read_text()
    assert page.count(KEEP_BELOW) == 1 and "## Nuclei many times the training size" in page.split(KEEP_BELOW)[1]
