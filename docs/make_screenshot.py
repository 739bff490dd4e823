"""Save screenshots of every widget into docs/screenshots/, each docked in a 1280x800 window, doing its job.

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshot.py [FOLDER]
    (or on a desktop: python docs/make_screenshot.py)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE = (1280, 800)


def _settle(seconds: float = 0.4) -> None:
    from qtpy.QtWidgets import QApplication

    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        QApplication.processEvents()
        time.sleep(0.02)


def _wait(widget, timeout: float) -> None:
    """Process events until the widget's worker is done."""
    from qtpy.QtWidgets import QApplication

    t0 = time.monotonic()
    while getattr(widget, "worker", None) is not None:
        QApplication.processEvents()
        time.sleep(0.05)
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{type(widget).__name__} did not finish within {timeout:.0f} s")
    _settle()


def _viewer():
    import napari

    viewer = napari.Viewer(show=True)
    viewer.window.resize(*SIZE)
    return viewer


def _dock(viewer, name: str):
    return viewer.window.add_plugin_dock_widget("napari-nucleiseg", name)[1]


def _save(viewer, path: Path) -> Path:
    viewer.reset_view()
    _settle()
    path.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(path), canvas_only=False)
    return path


def make_screenshot(path=HERE / "screenshots" / "segment.png", timeout: float = 300.0) -> Path:
    """Open the synthetic sample, segment it with the docked widget and save a screenshot of the window.

    Parameters
    ----------
    path : str or Path
        Where the PNG goes.
    timeout : float
        Seconds to wait for the segmentation.

    Returns
    -------
    Path
        ``path``.
    """
    viewer = _viewer()
    try:
        viewer.open_sample("napari-nucleiseg", "synthetic_nuclei")
        widget = _dock(viewer, "Segment Nuclei")
        widget.run()
        _wait(widget, timeout)
        viewer.layers.selection.active = viewer.layers["synthetic fluorescence nuclei"]
        return _save(viewer, Path(path))
    finally:
        viewer.close()


def evaluate_and_review(folder: Path, timeout: float = 300.0) -> list[Path]:
    """Crowded sample segmented, scored against its ground truth (errors shown), then the review list."""
    viewer = _viewer()
    try:
        viewer.open_sample("napari-nucleiseg", "crowded_nuclei")
        seg = _dock(viewer, "Segment Nuclei")
        seg.run()
        _wait(seg, timeout)
        viewer.window.remove_dock_widget("all")
        ev = _dock(viewer, "Evaluate Against Ground Truth")
        ev.start()
        _wait(ev, timeout)
        shots = [_save(viewer, folder / "evaluate.png")]
        viewer.window.remove_dock_widget("all")
        viewer.layers["crowded field nuclei errors"].visible = False
        review = _dock(viewer, "Review Least Certain Nuclei")
        viewer.reset_view()
        viewer.camera.zoom *= 2
        review._nuclei_list.value = [2]
        shots.append(folder / "review.png")
        _settle()
        viewer.screenshot(str(shots[-1]), canvas_only=False)
        return shots
    finally:
        viewer.close()


def finetune(folder: Path, steps: int = 12, timeout: float = 600.0) -> Path:
    """A short fine-tune on the crowded sample's ground truth, validated on the sparse sample."""
    viewer = _viewer()
    try:
        viewer.open_sample("napari-nucleiseg", "crowded_nuclei")
        viewer.open_sample("napari-nucleiseg", "synthetic_nuclei")
        widget = _dock(viewer, "Fine-tune Model")
        widget._image.value = viewer.layers["crowded field"]
        widget._labels_layer.value = viewer.layers["crowded field ground truth"]
        widget._val_image.value = viewer.layers["synthetic fluorescence"]
        widget._val_labels.value = viewer.layers["synthetic fluorescence ground truth"]
        widget._steps.value = steps
        widget._device.value = "cpu"
        widget._name.value = "screenshot-demo"
        widget.start()  # the model is saved in NUCLEISEG_USER_DIR (a temporary folder when run as a script)
        _wait(widget, timeout)
        for layer in ("synthetic fluorescence", "synthetic fluorescence ground truth"):
            viewer.layers[layer].visible = False
        return _save(viewer, folder / "finetune.png")
    finally:
        viewer.close()


def batch(folder: Path, timeout: float = 300.0) -> Path:
    """The shipped samples as a folder, segmented, with the result table."""
    viewer = _viewer()
    work = Path(tempfile.mkdtemp(prefix="nucleiseg-shot-"))
    try:
        src = work / "images"
        src.mkdir()
        for tif in sorted((HERE.parent / "sample_data").glob("*.tif")):
            shutil.copy(tif, src / tif.name)
        widget = _dock(viewer, "Batch Segment Folder")
        widget.set_folders(src, work / "results")
        widget.run()
        _wait(widget, timeout)
        widget.open_row(0)
        return _save(viewer, folder / "batch.png")
    finally:
        viewer.close()
        shutil.rmtree(work, ignore_errors=True)


def make_all(folder=HERE / "screenshots") -> list[Path]:
    """Every widget's screenshot: segment, evaluate, review, finetune, batch (PNG files in ``folder``)."""
    folder = Path(folder)
    return [make_screenshot(folder / "segment.png"), *evaluate_and_review(folder), finetune(folder),
            batch(folder)]


if __name__ == "__main__":
    import os

    os.environ.setdefault("NUCLEISEG_USER_DIR", tempfile.mkdtemp(prefix="nucleiseg-user-"))
    for out in make_all(*sys.argv[1:2]):
        print(f"saved {out}")
