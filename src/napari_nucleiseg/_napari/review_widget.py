"""Review helper: list nuclei least-confident first and centre the view on the one chosen."""

from __future__ import annotations

import napari
import numpy as np
import pandas as pd
from magicgui.widgets import CheckBox, ComboBox, Container, PushButton, Select
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QAbstractItemView

from ._common import form, hint, make_scrollable, row, short_names, status_label
from .live_table import follow_viewer, up_to_date

MAX_ROWS = 1000
TOOLS = [("Paint (repaint it)", "paint"), ("Erase", "erase"), ("Fill", "fill"), ("Keep the current tool", None)]


def review_order(features: pd.DataFrame) -> pd.DataFrame:
    """Rows of a nuclei table sorted least confident first (ties: smaller nucleus first).

    Parameters
    ----------
    features : pandas.DataFrame
        Needs ``label``, ``centroid_y``, ``centroid_x`` and ``confidence`` columns (as
        written by the Segment Nuclei widget); ``area`` and ``plane`` (stacks) are used when present.

    Returns
    -------
    pandas.DataFrame
        The same rows, reordered, index reset.

    Raises
    ------
    ValueError
        If a needed column is missing.
    """
    needed = {"label", "centroid_y", "centroid_x", "confidence"}
    missing = needed - set(features.columns)
    if missing:
        raise ValueError(f"the layer has no per-nucleus {', '.join(sorted(missing))} "
                         "(segment the image with Segment Nuclei first)")
    keys = ["confidence"] + (["area"] if "area" in features.columns else [])
    return features.sort_values(keys, kind="stable").reset_index(drop=True)


def describe_row(row) -> str:
    """One list entry, e.g. ``"#17  confidence 0.41  area 230 px  (plane 3)"`` (``edited`` in place of
    the confidence of a nucleus the user painted)."""
    text = f"#{int(row['label'])}  {_confidence(row)}"
    if "area" in row:
        text += f"  area {int(row['area'])} px"
    if "plane" in row and not pd.isna(row["plane"]):
        text += f"  (plane {int(row['plane'])})"
    return text


class ReviewWidget(Container):
    """List the nuclei of a segmentation, least certain first; choosing one centres the view on it.

    The chosen nucleus also becomes the active layer's selected label, shown alone when
    "highlight" is ticked, with the paint (or erase / fill) tool on, so it can be corrected
    straight away. Fix the worst ones first, then fine-tune on the result.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__(labels=False)
        self.viewer = napari_viewer
        self.rows = pd.DataFrame()
        self._watched = None  # the layer whose features changes refresh the list
        self._resume = None  # the label Next goes to after the picked nucleus was edited
        self._rows_of = None  # the layer the list was made from
        intro = hint("Nuclei the model is least sure about come first. Click one to jump to it: its layer "
                     "becomes the active one with the nucleus as the selected label and the chosen tool "
                     "on, ready to erase or repaint.")
        self._layer = ComboBox(label="Nuclei layer", choices=self._labels_choices,
                               tooltip="A '<image> nuclei' layer made by Segment Nuclei.")
        self._refresh = PushButton(text="Refresh list")
        self._nuclei_list = Select(label="Nuclei", choices=self._row_choices, tooltip="Least confident first.")
        self._nuclei_list.native.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._nuclei_list.native.setMinimumHeight(160)
        self._tool = ComboBox(label="Tool", choices=TOOLS, value="paint",
                              tooltip="The labels tool switched on when a nucleus is picked.")
        self._highlight = CheckBox(text="Highlight the picked nucleus (hide the others)", value=True,
                                   tooltip="napari's 'show selected' option of the Labels layer; untick it "
                                           "here or in the layer controls to see every nucleus again.")
        self._next = PushButton(text="Next", tooltip="Go to the next nucleus in the list.")
        self._info = status_label()
        self.extend([intro, form(self._layer), row(self._refresh, self._next), form(self._nuclei_list, self._tool),
                     self._highlight, self._info])
        self.native.layout().addStretch(1)
        make_scrollable(self)
        self._layer.changed.connect(self._watch)
        self._refresh.changed.connect(self.refresh)
        self._nuclei_list.changed.connect(self._on_select)
        self._next.changed.connect(self.next)
        self._highlight.changed.connect(self._on_highlight)
        events = self.viewer.layers.events
        follow_viewer(self.viewer)  # tables of results opened from files follow edits too
        for ev in (events.inserted, events.removed, events.reordered):
            ev.connect(self._reset)
        self._watch()

    def _watch(self, _value=None):
        """Follow the chosen layer: its list is rebuilt whenever its features change (a new run)."""
        if self._watched is not None:
            self._watched.events.features.disconnect(self.refresh)
        self._watched = self._layer.value
        if self._watched is not None:
            self._watched.events.features.connect(self.refresh)
        self.refresh()

    def _labels_choices(self, _widget=None):
        layers = [la for la in self.viewer.layers if isinstance(la, napari.layers.Labels)]
        layers.sort(key=lambda la: "confidence" not in la.features.columns)  # segmentations first
        return short_names(layers)

    def _row_choices(self, _widget=None):
        return [(describe_row(r), i) for i, r in self.rows.head(MAX_ROWS).iterrows()]

    def _reset(self, event=None):
        self._layer.reset_choices()
        if self._layer.value is not self._watched:  # a renamed layer's item can keep its text: no changed signal
            self._watch()

    def refresh(self, _value=None) -> None:
        """Re-read the chosen layer's features and rebuild the list (least confident first)."""
        layer = self._layer.value
        picked, before, self._resume = self._nuclei_list.value, self.rows, None
        self.rows = pd.DataFrame()
        self._nuclei_list.reset_choices()
        if layer is None:
            self._info.value = "No Labels layer: segment an image first."
            return
        current = up_to_date(layer)  # erased and repainted nuclei leave the list as they are edited
        try:
            rows = review_order(layer.features)
        except ValueError as exc:
            self._info.value = f"'{layer.name}': {exc}"
            return
        if not current:
            rows = _still_present(rows, layer)
        if picked and layer is self._rows_of and int(picked[0]) + 1 < len(before):
            self._resume = _after_edit(before, int(picked[0]), rows)
        self.rows, self._rows_of = rows, layer
        self._nuclei_list.reset_choices()
        more = f" (showing the {MAX_ROWS} least confident)" if len(rows) > MAX_ROWS else ""
        self._info.value = f"{len(rows)} nuclei{more}."

    def _on_select(self, value):
        if value:
            self.go_to(int(value[0]))

    def next(self) -> None:
        """Select the nucleus after the current one in the list (the first when none is selected)."""
        if self.rows.empty:
            return
        current = self._nuclei_list.value
        i = (int(current[0]) + 1) if current else self._resumed_row()
        i = min(i, min(len(self.rows), MAX_ROWS) - 1)
        self._nuclei_list.value = [i]
        native = self._nuclei_list.native
        native.scrollToItem(native.item(i))  # Next deep in the list keeps the picked row in sight

    def _resumed_row(self) -> int:
        """The row of the nucleus that followed the one picked before the list was rebuilt (0 if gone)."""
        label, self._resume = self._resume, None
        hits = np.flatnonzero(self.rows["label"].to_numpy() == label) if label is not None else []
        return int(hits[0]) if len(hits) else 0

    def go_to(self, row: int) -> None:
        """Centre the view on the nucleus in list position ``row`` and make it the selected label."""
        layer = self._layer.value
        if layer is None or not 0 <= row < len(self.rows):
            return
        r = self.rows.iloc[row]
        point = [float(r["centroid_y"]), float(r["centroid_x"])]
        if layer.ndim == 3:
            if "plane" not in r:
                show_error(f"'{layer.name}' is a stack but its table has no 'plane' column.")
                return
            point = [float(r["plane"])] + point
        elif layer.ndim != 2:
            show_error(f"'{layer.name}' has {layer.ndim} dimensions; only 2D images and stacks are supported.")
            return
        world = np.asarray(layer.data_to_world(point), float)
        if layer.ndim == 3:  # the layer's axes are the viewer's last ones
            self.viewer.dims.set_point(self.viewer.dims.ndim - 3, world[0])
        self.viewer.camera.center = tuple(world[-2:])
        self.viewer.layers.selection.active = layer
        layer.selected_label = int(r["label"])
        layer.show_selected_label = bool(self._highlight.value)
        read_only = not layer.editable  # a multiscale (out-of-core) result: napari paints no pyramid
        if self._tool.value is not None and not read_only:
            layer.mode = self._tool.value
        self._info.value = f"Nucleus #{int(r['label'])}: {_confidence(r)}" + (
            " (this result is read-only: a multiscale out-of-core result)" if read_only else "")

    def _on_highlight(self, value: bool) -> None:
        layer = self._layer.value
        if layer is not None and self._nuclei_list.value:
            layer.show_selected_label = bool(value)


def _after_edit(before: pd.DataFrame, picked: int, rows: pd.DataFrame) -> int | None:
    """The label after the picked row of the list ``before``, when the picked nucleus was erased or
    repainted (gone from ``rows``, or without a confidence now); else None (Next starts from the top)."""
    label = before.iloc[picked]["label"]
    now = rows[rows["label"] == label]
    if len(now) and not now["confidence"].isna().all():
        return None
    return int(before.iloc[picked + 1]["label"])


def _confidence(row) -> str:
    if pd.isna(row["confidence"]):
        return "edited"  # painted since it was measured: the model's confidence is gone with its outline
    return f"confidence {float(row['confidence']):.2f}"


def _still_present(rows: pd.DataFrame, layer) -> pd.DataFrame:
    """The rows whose nucleus the layer still holds (one the user erased leaves the list); a lazy
    or multiscale layer is trusted as it is (reading it whole would freeze the viewer)."""
    data = layer.data
    if getattr(layer, "multiscale", False) or not isinstance(data, np.ndarray) or rows.empty:
        return rows
    present = np.isin(rows["label"].to_numpy(), np.unique(data))
    return rows[present].reset_index(drop=True)
