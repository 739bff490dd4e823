"""The documentation screenshot script runs end to end and writes a real picture."""

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "make_screenshot.py"


def test_make_screenshot(tmp_path, qapp):
    spec = importlib.util.spec_from_file_location("make_screenshot", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.make_screenshot(tmp_path / "shot.png", timeout=120)
    import imageio.v3 as iio

    img = iio.imread(out)
    assert img.ndim == 3 and img.shape[0] > 400 and img.shape[1] > 600
    assert np.unique(img.reshape(-1, img.shape[-1])[::97], axis=0).shape[0] > 50  # not a blank window
