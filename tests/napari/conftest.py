"""Fixtures for the napari (Qt) tests: they run under Xvfb (pytest-xvfb) with napari's fixtures."""

import napari  # noqa: F401  (required by the tests: a broken install fails, never skips)
import pytest
import qtpy  # noqa: F401

from napari_nucleiseg.synthetic import synthetic_nuclei


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/napari/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.napari)


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
