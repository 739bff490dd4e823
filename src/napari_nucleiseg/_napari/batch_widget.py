"""Batch Segment Folder dock widget: segment a folder in a thread worker, then browse the results."""

from __future__ import annotations

import os
from pathlib import Path

import napari
import pandas as pd
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
    Table,
)
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QSizePolicy

from .. import zoo
from ..batch import BatchOptions, BatchProgress, BatchResult, run_batch
from ..batch.options import ERROR
from ..batch.report import outcome_line
from ..errors import ImageTooLargeError, NucleisegError
from ._common import (
    ProgressRelay,
    channel_box,
    channel_value,
    denoise_box,
    diameter_box,
    diameter_value,
    even_light_box,
    form,
    hint,
    keep_chosen,
    make_scrollable,
    model_choices,
    row,
    section,
    start_worker,
    status_label,
)
from .features import label_features
from .layer_output import put_layers
from .segment_work import _spatial

DEVICES = [("Auto (GPU if there is one)", "auto"), ("CPU", "cpu"), ("CUDA GPU", "cuda")]
TABLE_COLUMNS = ["file", "status", "nuclei", "mean_area", "mean_confidence", "error"]
#: Column headers people read (summary.csv keeps the machine names).
TABLE_HEADERS = {"file": "File", "status": "Status", "nuclei": "Nuclei", "mean_area": "Mean area",
                 "mean_confidence": "Confidence", "error": "Error"}


def _first_failure(summary: pd.DataFrame) -> str:
    """`` First failure: <file>: <error>.`` for a run with failed images (the table's Error column is
    its last, often out of sight), else ``""``."""
    failed = summary[summary["status"] == ERROR]
    if not len(failed):
        return ""
    error = str(failed.iloc[0]["error"])
    return f" First failure: {failed.iloc[0]['file']}: {error if len(error) <= 160 else error[:157] + '...'}."


def _clock(seconds: float | None) -> str:
    """``"about 2 min left"``-style text for an ETA in seconds."""
    if seconds is None:
        return "estimating time left"
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


def run_folder(input_dir, output_dir, options: BatchOptions, **kwargs) -> BatchResult | str:
    """Thread-worker body: ``batch.run_batch``, with fatal errors returned as a message string."""
    try:
        return run_batch(input_dir, output_dir, options, **kwargs)
    except (NucleisegError, OSError) as exc:
        return str(exc)


class BatchWidget(Container):
    """Segment every image of a folder, writing results to another folder; resumes interrupted runs.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        Where a result opens when its row of the result table is clicked.

    Notes
    -----
    :meth:`run` starts the batch in a napari thread worker (napari stays usable) and returns
    the worker; :meth:`cancel` stops it after the current image. When it ends, ``result``
    holds the :class:`~napari_nucleiseg.batch.run.BatchResult` and the table lists every image;
    :meth:`open_row` opens one image with its labels (what a click on a row does).
    """

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__(labels=False)
        self.viewer = napari_viewer
        self.worker = None
        self.result: BatchResult | None = None
        self._run_input = Path(".")
        self._run_channel: int | None = None  # the nucleus channel of the run, shown by open_row
        self._cancel_requested = False
        self._relay = ProgressRelay()
        self._relay.progressed.connect(self._on_progress)

        self._intro = hint("Segments every image of a folder and writes, per image, labels, probability "
                            "and uncertainty TIFFs and a per-nucleus CSV, plus summary.csv and "
                            "run_manifest.json. Running again into the same output folder skips finished "
                            "images. Click a row of the result table to open that image with its nuclei.")
        self._input = FileEdit(label="Input folder", mode="d",
                               tooltip="Folder with the images (TIFF, PNG, JPEG). They are never modified.")
        self._output = FileEdit(label="Output folder", mode="d",
                                tooltip="Where the results go; must differ from the input folder.")
        for edit in (self._input, self._output):
            edit.choose_btn.text = "Browse..."
        self._pattern = LineEdit(label="File pattern", value="*",
                                 tooltip="Which files to take, e.g. *.tif or plate1_*; only image files "
                                         "are used.")
        self._recursive = CheckBox(text="Include sub-folders", value=False,
                                   tooltip="Also process images in sub-folders; the output mirrors them.")
        self._model = ComboBox(label="Model", choices=self._model_choices,
                               tooltip="Which trained network finds the nuclei (your fine-tuned models "
                                       "are listed too).")
        self._device = ComboBox(label="Device", choices=DEVICES, value="auto",
                                tooltip="Where the network runs. Auto uses a GPU when one is available.")
        self._threshold = FloatSpinBox(label="Probability threshold", min=0.05, max=0.95, step=0.05, value=0.5,
                                       tooltip="A pixel counts as nucleus above this probability. Left at the model's "
                                               "value, the model's own setting for each kind of image applies.")
        self._min_size = SpinBox(label="Min. nucleus size (pixels)", min=0, max=100000, value=8,
                                 tooltip="Smaller objects are dropped as debris. Left at the model's value, the "
                                         "model's own setting for each kind of image applies.")
        self._diameter = diameter_box()
        self._tta = CheckBox(text="Test-time augmentation (8x slower)", value=False)
        self._denoise = denoise_box()
        self._even_light = even_light_box()
        self._channel = channel_box()
        self._probability = CheckBox(text="Write probability maps", value=True)
        self._uncertainty = CheckBox(text="Write uncertainty maps", value=True)
        self._overlay = CheckBox(text="Write overlay pictures (PNG)", value=False,
                                 tooltip="Outlines over each image. Images too large for memory are segmented "
                                         "out of core and get none: open their row to see them.")
        self._workers = SpinBox(label="Parallel workers", min=1, max=max(1, os.cpu_count() or 1), value=1,
                                tooltip="Images processed at the same time, each in its own process "
                                        "(uses more memory). 1 runs inside napari.")
        self._run_btn = PushButton(text="Run batch", tooltip="Start (napari stays usable).")
        self._cancel_btn = PushButton(text="Cancel", enabled=False,
                                      tooltip="Stop after the current image; finished images are kept.")
        self._progress = ProgressBar(label="Images", min=0, max=1, value=0)
        self._status = status_label()
        self._table = Table(value=pd.DataFrame(columns=list(TABLE_HEADERS.values())))
        _fit_table(self._table.native)
        self._table.native.cellClicked.connect(lambda row, _col: self.open_row(row))
        self._table.visible = False
        self._advanced = section("Advanced settings", [
            self._pattern, self._recursive, self._device, self._threshold, self._min_size, self._diameter,
            self._channel, self._tta, self._denoise, self._even_light, self._probability, self._uncertainty,
            self._overlay, self._workers])
        self.extend([self._intro, form(self._input, self._output, self._model), self._advanced,
                     row(self._run_btn, self._cancel_btn), form(self._progress), self._status, self._table])
        self.native.layout().addStretch(1)
        make_scrollable(self)

        self._model.changed.connect(self._on_model_changed)
        self._run_btn.changed.connect(lambda: self.run())
        self._cancel_btn.changed.connect(self.cancel)
        self._on_model_changed()

    # ----- choices -------------------------------------------------------------------------------
    def _model_choices(self, _widget=None):
        return model_choices()

    def refresh_models(self, renamed: dict | None = None) -> None:
        """Re-read the model zoo (a model fine-tuned in this session appears), keeping the choice,
        or under its new name (``renamed``: old -> new)."""
        keep_chosen(self._model, renamed)

    def _on_model_changed(self, _value=None):
        if self._model.value is None:
            return
        try:
            post = zoo.get_entry(self._model.value).postprocess()
        except (KeyError, FileNotFoundError):
            return
        self._threshold.value = float(post["threshold"])
        self._min_size.value = int(post["min_size"])

    def set_folders(self, input_dir, output_dir) -> None:
        """Fill in the two folder pickers."""
        self._input.value = Path(input_dir)
        self._output.value = Path(output_dir)

    def options(self) -> BatchOptions:
        """The segmentation and output options chosen in the widget."""
        return BatchOptions(model=self._model.value or "default", tta=self._tta.value, denoise=self._denoise.value,
                            even_light=self._even_light.value, channel=channel_value(self._channel),
                            device=self._device.value,
                            threshold=self._threshold.value, min_size=self._min_size.value,
                            diameter=diameter_value(self._diameter), probability=self._probability.value,
                            uncertainty=self._uncertainty.value, overlay=self._overlay.value)

    # ----- running -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a batch runs."""
        return self.worker is not None

    def run(self):
        """Start the batch in a thread worker; returns the worker, or None when nothing was started."""
        if self.running:
            show_info("A batch is already running; cancel it first.")
            return None
        src, out = Path(self._input.value), Path(self._output.value)
        if str(self._input.value) in ("", ".") or not src.is_dir():
            return self._refuse(f"Choose an existing input folder (got '{self._input.value}').")
        if str(self._output.value) in ("", "."):
            return self._refuse("Choose an output folder.")
        if src.resolve() == out.resolve():
            return self._refuse("The output folder is the input folder: choose another output folder.")
        self._cancel_requested = False
        self._run_input = src
        self._run_channel = self.options().channel
        self.result = None
        self._table.visible = False
        self._progress.max, self._progress.value = 1, 0
        self._status.value = f"Looking for images in {src}..."
        self._set_busy(True)
        self.worker = start_worker(run_folder, src, out, self.options(), pattern=self._pattern.value or "*",
                                   recursive=self._recursive.value, workers=self._workers.value,
                                   progress=self._relay.progressed.emit, cancel=self._is_cancelled,
                                   what="Batch stopped", on_returned=self._on_returned, on_error=self._refuse,
                                   on_finished=self._on_finished, viewer=self.viewer, stop=self.cancel,
                                   task=f"batch of {src}")
        return self.worker

    def _refuse(self, message: str):
        show_error(message)
        self._status.value = message
        return None

    def cancel(self) -> None:
        """Stop the running batch after the current image (finished images are kept)."""
        if self.running:
            self._cancel_requested = True
            self._cancel_btn.enabled = False
            self._status.value = "Cancelling after the current image..."

    def _is_cancelled(self) -> bool:
        return self._cancel_requested

    def _set_busy(self, busy: bool) -> None:
        self._run_btn.enabled = not busy
        self._cancel_btn.enabled = busy
        for w in (self._input, self._output, self._pattern, self._recursive, self._model, self._device,
                  self._threshold, self._min_size, self._diameter, self._tta, self._denoise, self._even_light,
                  self._channel, self._probability, self._uncertainty, self._overlay, self._workers):
            w.enabled = not busy

    def _on_progress(self, ev: BatchProgress) -> None:
        if not self.running or self._cancel_requested:
            return
        self._progress.max = ev.total
        self._progress.value = ev.done
        left = f", {_clock(ev.eta)}" if ev.done < ev.total else ""
        self._status.value = f"{ev.done} of {ev.total} images done{left} ({ev.row['file']})"

    def _on_returned(self, outcome) -> None:
        if isinstance(outcome, str):
            self._status.value = outcome
            show_error(outcome)
            return
        self.result = outcome
        self._progress.max = max(1, len(outcome.summary))
        self._progress.value = len(outcome.summary) - outcome.n_pending
        stopped = f"; stopped early: {outcome.error}" if outcome.status == "stopped" else ""
        text = f"{outcome_line(outcome)}{stopped}.{_first_failure(outcome.summary)} Summary: {outcome.summary_path}"
        self._status.value = text
        self._table.value = self._table_data(outcome.summary)
        _fit_table(self._table.native)
        self._table.visible = True
        (show_error if outcome.status == "stopped" else show_info)(text)

    @staticmethod
    def _table_data(summary: pd.DataFrame) -> pd.DataFrame:
        df = summary[TABLE_COLUMNS].reset_index(drop=True)
        df["mean_area"] = df["mean_area"].map(lambda v: "" if pd.isna(v) else f"{float(v):.0f}")
        df["mean_confidence"] = df["mean_confidence"].map(lambda v: "" if pd.isna(v) else f"{float(v):.2f}")
        return df.rename(columns=TABLE_HEADERS)

    def _on_finished(self) -> None:
        self.worker = None
        self._set_busy(False)

    # ----- results -------------------------------------------------------------------------------
    def open_row(self, row: int) -> list:
        """Open the image of result row ``row`` with its labels (measurements as layer features).

        Returns the layers added (empty for an image that failed, whose error is shown instead).
        """
        if self.result is None or not 0 <= row < len(self.result.summary):
            return []
        from ..io.pixel_size import pixel_size
        from ..outofcore.auto import file_pixel_size

        rec = self.result.summary.iloc[row]
        if rec["status"] != "ok":
            show_info(f"{rec['file']}: {rec['error'] or rec['status']}")
            return []
        name = str(rec["file"])
        source = self._run_input / name
        size = file_pixel_size(source) if source.is_dir() else pixel_size(source)  # an OME-Zarr folder's own
        try:
            if str(rec["labels"]).endswith(".zarr"):  # segmented out of core: its result, lazily
                outputs = self._out_of_core_layers(rec, name, _scaled(size, 2))
            else:
                outputs = [self._labels_layer(rec, name, size)]
            image = self._row_image(source)
        except ImageTooLargeError as exc:  # the result (lazy) is shown without its image
            show_info(f"{name}: the image is not opened ({exc}); its result is")
            return put_layers(self.viewer, outputs)
        except (NucleisegError, OSError, ValueError) as exc:
            show_error(str(exc))
            return []
        spatial = image.ndim - (1 if image.ndim == 3 and image.shape[-1] in (3, 4) else 0)
        return put_layers(self.viewer, [(image, {"name": name, **_scaled(size, spatial)}, "image")] + outputs)

    def _row_image(self, source: Path):
        """The image of a result row, as it was segmented (the nucleus channel when one was chosen)."""
        from ..io.images import read_image

        channel = self._run_channel
        image = read_image(source, channels=channel is not None)
        if channel is not None and image.ndim > 2:  # the channel that was segmented
            image = image[..., channel]
        return image

    def _labels_layer(self, rec, name: str, size) -> tuple:
        import tifffile

        out = self.result.output_dir
        labels = tifffile.imread(out / rec["labels"]).astype("int32")
        features = _read_features(out / str(rec["labels"]).replace("_labels.tif", "_nuclei.csv"))
        kwargs = {"name": f"{name} nuclei", **_scaled(size, labels.ndim)}
        if features is not None and labels.ndim == 2:
            kwargs["features"] = features
        return labels, kwargs, "labels"

    def _out_of_core_layers(self, rec, name: str, scale: dict) -> list[tuple]:
        from .outofcore_work import result_layers

        folder = (self.result.output_dir / str(rec["labels"])).parent
        return result_layers(folder, name, scale.get("scale", (1.0, 1.0)), (0.0, 0.0), {})


def _scaled(size: tuple[float, ...] | None, ndim: int) -> dict:
    """``{"scale": ...}`` for a layer of ``ndim`` spatial axes from a file's pixel size (``io.pixel_size``;
    axes it does not name get 1), or nothing when the file names none."""
    return {} if size is None else {"scale": _spatial(size, ndim, 1.0)}


def _fit_table(table) -> None:
    """A read-only result table as wide as the dock allows: long names elided in the middle, full on hover."""
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustIgnored)
    table.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
    table.setMinimumSize(100, 160)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    table.setWordWrap(False)
    table.verticalHeader().setVisible(False)
    header = table.horizontalHeader()
    header.setMinimumSectionSize(40)
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    if table.columnCount():
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 120)
    for r in range(table.rowCount()):
        for c in range(table.columnCount()):
            item = table.item(r, c)
            if item is not None:
                item.setToolTip(item.text())


def _read_features(path) -> pd.DataFrame | None:
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError):
        return None
    return label_features(df) if "label" in df else None
