"""Scripts that write a docs page (``experiments/sizing_study.py``, ``experiments/robustness.py``)
rewrite their report at its top and keep the hand-written sections below the marker."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from devtools import KEEP_BELOW, kept_below  # noqa: E402


def test_the_study_keeps_the_hand_written_sections():
    old = f"# old report\n\nold table\n\n{KEEP_BELOW}\n\n## A probe\n\nwritten by hand\n"
    new = kept_below("# new report\n\nnew table\n", old)
    assert new.startswith("# new report\n\nnew table") and "old table" not in new
    assert new.endswith(f"{KEEP_BELOW}\n\n## A probe\n\nwritten by hand\n")
    assert kept_below("# first report\n", "").endswith(KEEP_BELOW + "\n")  # no page yet: the marker is added


def test_the_written_pages_have_the_marker():
    docs = Path(__file__).resolve().parents[1] / "docs"
    for page, kept in (("sizing.md", "## Nuclei many times the training size"), ("robustness.md", "## Noise")):
        text = (docs / page).read_text()
        assert text.count(KEEP_BELOW) == 1 and kept in text.split(KEEP_BELOW)[1]
