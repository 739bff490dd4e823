"""Shared test fixtures: an isolated user-model folder and the shared DSB data (skipped when absent)."""

from pathlib import Path

import pytest

from napari_nucleiseg.training.dataset import default_data_dir


@pytest.fixture(autouse=True)
def _isolated_user_models(tmp_path_factory, monkeypatch):
    """Every test gets its own empty user-model folder (never the real one)."""
    monkeypatch.setenv("NUCLEISEG_USER_DIR", str(tmp_path_factory.mktemp("user")))


@pytest.fixture(scope="session")
def dsb_dir() -> Path:
    """The shared DSB 2018 data; tests using it are skipped cleanly when it is absent."""
    d = default_data_dir()
    if not (d / "train" / "images").is_dir():
        pytest.skip(f"shared DSB data not found at {d}")
    return d


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "sample_data"
