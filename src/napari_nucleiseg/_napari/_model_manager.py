"""Manage user models from napari: rename, export to a file or a bioimage.io package (in a worker),
import from a file, delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from magicgui.widgets import ComboBox, Container, LineEdit, PushButton

from .. import zoo
from ._common import start_worker, status_label


def _user_model_names(_widget=None) -> list[str]:
    return [e.name for e in zoo.list_models() if e.user]


class ModelManager(Container):
    """User-model management; the file dialogs are only in the button handlers.

    Parameters
    ----------
    on_change : callable, optional
        ``on_change(renamed)`` is called (in the main thread) after any change, e.g. to refresh model
        lists; ``renamed`` maps an old model name to its new one after a rename (else empty).
    notify : callable, optional
        ``notify(message, error: bool)`` shows a message to the user.
    in_use : callable, optional
        ``in_use()`` names the models that running jobs use: those are not renamed or deleted.
    """

    def __init__(self, on_change: Callable[[dict], None] | None = None,
                 notify: Callable[[str, bool], None] | None = None,
                 in_use: Callable[[], set] | None = None):
        self.model = ComboBox(label="User model", choices=_user_model_names)
        self.new_name = LineEdit(label="New name")
        self.rename_btn = PushButton(text="Rename")
        self.export_btn = PushButton(text="Export...")
        self.import_btn = PushButton(text="Import...")
        self.delete_btn = PushButton(text="Delete")
        self.bioimageio_btn = PushButton(text="Export to bioimage.io...",
                                         tooltip="Write the model as a bioimage.io model package (.zip, spec 0.5), "
                                                 "tested with bioimageio.core; needs the [bioimageio] extra.")
        self.info = status_label()
        self.export_worker = None
        buttons = Container(widgets=[Container(widgets=[self.rename_btn, self.export_btn], layout="horizontal",
                                               labels=False),
                                     Container(widgets=[self.import_btn, self.delete_btn], layout="horizontal",
                                               labels=False), self.bioimageio_btn], labels=False)
        buttons.margins = (0, 0, 0, 0)
        super().__init__(widgets=[self.model, self.new_name, buttons, self.info])
        self.margins = (0, 0, 0, 0)
        self._on_change = on_change or (lambda renamed: None)
        self._notify = notify or (lambda msg, error=False: None)
        self._in_use = in_use or set
        self.rename_btn.changed.connect(self._rename_clicked)
        self.export_btn.changed.connect(self._export_clicked)
        self.import_btn.changed.connect(self._import_clicked)
        self.delete_btn.changed.connect(self._delete_clicked)
        self.bioimageio_btn.changed.connect(self._bioimageio_clicked)
        self.model.changed.connect(self._show_info)
        self._show_info()

    # -- actions (no dialogs; tests call these) -------------------------------------------
    def refresh(self) -> None:
        """Re-read the user models."""
        self.model.reset_choices()
        self._show_info()

    def rename(self, old: str, new: str) -> zoo.ModelEntry:
        """Rename user model ``old`` to ``new`` (the widgets that had ``old`` chosen keep it)."""
        self._check_idle(old, "renamed")
        entry = zoo.rename_user_model(old, new)
        self._changed(f"renamed {old!r} to {new!r}", select=new, renamed={old: new})
        return entry

    def export(self, name: str, path) -> Path:
        """Write user (or shipped) model ``name`` to one portable file."""
        out = zoo.export_model(name, path)
        self._notify(f"exported {name!r} to {out}", False)
        return out

    def export_bioimageio(self, name: str, path):
        """Write model ``name`` as a bioimage.io package at ``path`` in a worker (napari stays
        responsive; the package is tested with bioimageio.core); one message when it is done.
        Returns the worker (None while another export runs)."""
        from ..bioimageio.export import export_package

        if self.export_worker is not None:
            self._notify("a bioimage.io export is running already", True)
            return None
        self.bioimageio_btn.enabled = False
        self.info.value = f"exporting {name!r} to {Path(path).name}..."

        def finished():
            self.export_worker = None
            self.bioimageio_btn.enabled = True
            self._show_info()

        self.export_worker = start_worker(
            export_package, name, path, test=True, what=f"Cannot export {name!r} to bioimage.io",
            on_returned=lambda out: self._notify(f"exported {name!r} to {out} (a bioimage.io package that "
                                                 "passes bioimageio test)", False),
            on_error=lambda msg: self._notify(msg, True), on_finished=finished)
        return self.export_worker

    def import_file(self, path, name: str | None = None) -> zoo.ModelEntry:
        """Add a model file (from ``export``) to the user models."""
        entry = zoo.import_model(path, name=name or None)
        self._changed(f"imported {entry.name!r} from {Path(path).name}", select=entry.name)
        return entry

    def delete(self, name: str) -> None:
        """Delete user model ``name`` (shipped models cannot be deleted)."""
        self._check_idle(name, "deleted")
        zoo.delete_user_model(name)
        self._changed(f"deleted {name!r}")

    # -- internals ----------------------------------------------------------------------
    def _check_idle(self, name: str, verb: str) -> None:
        if name in self._in_use():
            raise ValueError(f"{name!r} is in use by a running job and cannot be {verb} now: "
                             "wait for it to finish, or cancel it")

    def _changed(self, message: str, select: str | None = None, renamed: dict | None = None) -> None:
        self.refresh()
        if select is not None and select in self.model.choices:
            self.model.value = select
        self._notify(message, False)
        self._on_change(renamed or {})

    def _show_info(self, *_):
        name = self.model.value
        if not name:
            self.info.value = "no user models yet"
            return
        try:
            card = zoo.get_entry(name).card
        except KeyError:
            self.info.value = ""
            return
        ft = card.get("finetune", {})
        parts = [f"from {card.get('parent', '?')}"]
        if ft:
            parts.append(f"{len(ft.get('images', []))} image(s), {ft.get('steps_done', '?')} steps")
            if ft.get("best_validation_dsb") is not None:
                parts.append(f"val DSB {ft['best_validation_dsb']:.3f}")
        self.info.value = ", ".join(parts)

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except (ValueError, KeyError, OSError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            self._notify(str(msg), True)
            return None

    def _rename_clicked(self, *_):
        if not self.model.value:
            return self._notify("no user model to rename", True)
        self._guard(self.rename, self.model.value, self.new_name.value.strip())

    def _export_clicked(self, *_):
        from qtpy.QtWidgets import QFileDialog

        if not self.model.value:
            return self._notify("no user model to export", True)
        path, _ = QFileDialog.getSaveFileName(self.native, "Export model", f"{self.model.value}.nucleiseg.pt",
                                              "napari-nucleiseg model (*.pt)")
        if path:
            self._guard(self.export, self.model.value, path)

    def _bioimageio_clicked(self, *_):
        from qtpy.QtWidgets import QFileDialog

        if not self.model.value:
            return self._notify("no user model to export (shipped ones: nucleiseg export MODEL --bioimageio OUT.zip)",
                                True)
        path, _ = QFileDialog.getSaveFileName(self.native, "Export to bioimage.io",
                                              f"{self.model.value}.bioimageio.zip", "bioimage.io model package (*.zip)")
        if path:
            self.export_bioimageio(self.model.value, path if path.endswith(".zip") else path + ".zip")

    def _import_clicked(self, *_):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self.native, "Import model", "", "napari-nucleiseg model (*.pt)")
        if path:
            self._guard(self.import_file, path, self.new_name.value.strip() or None)

    def _delete_clicked(self, *_):
        from qtpy.QtWidgets import QMessageBox

        name = self.model.value
        if not name:
            return self._notify("no user model to delete", True)
        answer = QMessageBox.question(self.native, "Delete model", f"Delete your model {name!r}? "
                                      "Export it first if you may need it again.")
        if answer == QMessageBox.StandardButton.Yes:
            self._guard(self.delete, name)
