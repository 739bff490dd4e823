"""Save docs/screenshot_segment.png: the Segment Nuclei widget docked, results and measurements shown.

    xvfb-run -a python docs/make_screenshot.py          (or on a desktop: python docs/make_screenshot.py)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_screenshot(path=HERE / "screenshot_segment.png", timeout: float = 300.0) -> Path:
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
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    try:
        viewer.window.resize(1500, 950)
        viewer.open_sample("napari-nucleiseg", "synthetic_nuclei")
        _, widget = viewer.window.add_plugin_dock_widget("napari-nucleiseg", "Segment Nuclei")
        widget.run()
        t0 = time.monotonic()
        while widget.running:
            QApplication.processEvents()
            time.sleep(0.05)
            if time.monotonic() - t0 > timeout:
                widget.cancel()
                raise TimeoutError("segmentation did not finish in time")
        QApplication.processEvents()
        nuclei = viewer.layers["synthetic nuclei nuclei"]
        viewer.layers.selection.active = nuclei
        table_dock, _ = viewer.window.add_plugin_dock_widget("napari", "Features table widget", tabify=False)
        table_dock.setMinimumHeight(300)  # room for several rows of measurements
        viewer.reset_view()
        for _ in range(20):
            QApplication.processEvents()
            time.sleep(0.02)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(str(path), canvas_only=False)
        return path
    finally:
        viewer.close()


if __name__ == "__main__":
    out = make_screenshot(*sys.argv[1:2])
    print(f"saved {out}")
