"""Shared test fixtures: an isolated user-model folder and the shared DSB data (skipped when absent).

A skip for any other reason than the two allowed (no DSB data; no display for the napari
tests, ``display_check``) fails the run: a missing dependency or a broken install must not
pass as green.
"""

from pathlib import Path

import pytest
from display_check import DISPLAY_ABSENT

from napari_nucleiseg.training.dataset import default_data_dir

#: A reason a test may skip (``dsb_dir``).
DATA_ABSENT = "shared DSB data not found (set NUCLEISEG_DATA, or put it at ../shared/data/dsb2018)"
#: A reason a test may skip: the optional bioimage.io extra is not installed (``make install-test``
#: and CI install it, so there these tests run).
BIOIMAGEIO_ABSENT = ("the bioimageio extra is not installed (pip install 'napari-nucleiseg[bioimageio]'; "
                     "make install-test installs it)")
#: The allowed reasons: exactly ``DATA_ABSENT`` or ``BIOIMAGEIO_ABSENT``, or ``DISPLAY_ABSENT`` followed by
#: what is missing.
ALLOWED_SKIPS = {DATA_ABSENT, BIOIMAGEIO_ABSENT}
ALLOWED_SKIP_PREFIXES = (DISPLAY_ABSENT + ":",)

_unexpected_skips: list[str] = []


def _note_skip(report) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if reason not in ALLOWED_SKIPS and not reason.startswith(ALLOWED_SKIP_PREFIXES):
        _unexpected_skips.append(f"{report.nodeid}: {reason}")


def pytest_collectreport(report):
    _note_skip(report)


def pytest_runtest_logreport(report):
    _note_skip(report)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if _unexpected_skips and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _unexpected_skips:
        terminalreporter.section("unexpected skips", red=True, bold=True)
        terminalreporter.line(f"{len(_unexpected_skips)} skipped for a reason other than {DATA_ABSENT!r}, "
                              f"{BIOIMAGEIO_ABSENT!r} or {DISPLAY_ABSENT!r}, "
                              "so the run fails:", red=True)
        for line in _unexpected_skips:
            terminalreporter.line(f"  {line}")


@pytest.fixture(autouse=True)
def _isolated_user_models(tmp_path_factory, monkeypatch):
    """Every test gets its own empty user-model folder (never the real one)."""
    monkeypatch.setenv("NUCLEISEG_USER_DIR", str(tmp_path_factory.mktemp("user")))


@pytest.fixture(scope="session")
def dsb_dir() -> Path:
    """The shared DSB 2018 data; tests using it are skipped cleanly when it is absent."""
    d = default_data_dir()
    if not (d / "train" / "images").is_dir():
        pytest.skip(DATA_ABSENT)
    return d


@pytest.fixture(scope="session")
def bioimageio_extra() -> None:
    """Tests of bioimage.io packages skip cleanly (``BIOIMAGEIO_ABSENT``) without the extra."""
    from napari_nucleiseg.bioimageio import available

    if not available():
        pytest.skip(BIOIMAGEIO_ABSENT)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "sample_data"
