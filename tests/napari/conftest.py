"""Fixtures for the napari (Qt) tests: they run under Xvfb (pytest-xvfb) with napari's fixtures.

Where Qt cannot open a window (no Xvfb, missing xcb libraries) they are skipped with
``DISPLAY_ABSENT`` and one line naming what is missing, instead of aborting the run.
"""

import napari  # noqa: F401  (required by the tests: a broken install fails, never skips)
import pytest
import qtpy  # noqa: F401
from display_check import DISPLAY_ABSENT, INSTALL, missing_for_qt  # tests/ is on sys.path (rootdir conftest)

from napari_nucleiseg.synthetic import synthetic_nuclei

_skip = {}  # "reason" once checked: None when Qt can open a window


def _skip_reason() -> str | None:
    # checked at collection, after pytest-xvfb has started Xvfb (this conftest may be imported before)
    if "reason" not in _skip:
        missing = missing_for_qt()
        _skip["reason"] = f"{DISPLAY_ABSENT}: missing {missing}; install with {INSTALL}" if missing else None
    return _skip["reason"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/napari/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.napari)
            if _skip_reason():
                item.add_marker(pytest.mark.skip(reason=_skip_reason()))


def pytest_terminal_summary(terminalreporter):
    if _skip.get("reason"):
        terminalreporter.line(f"napari tests skipped: {_skip['reason']}", yellow=True, bold=True)


@pytest.fixture
def small_field():
    """A 128x128 synthetic fluorescence field (uint16) and its ground truth: fast to segment."""
    return synthetic_nuclei((128, 128), n_nuclei=10, touching=0.2, seed=5)


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def notifications(monkeypatch):
    """Collect the messages our widgets show with show_error / show_info."""
    shown = {"error": [], "info": []}
    import napari_nucleiseg._napari.segment_widget as sw

    monkeypatch.setattr(sw, "show_error", lambda msg: shown["error"].append(msg))
    monkeypatch.setattr(sw, "show_info", lambda msg: shown["info"].append(msg))
    return shown
