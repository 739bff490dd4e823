"""Manage user models from napari: rename, export to a file, import from a file, delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from magicgui.widgets import ComboBox, Container, LineEdit, PushButton

from .. import zoo
from ._common import status_label


def _user_model_names(_widget=None) -> list[str]:
    return [e.name for e in zoo.list_models() if e.user]


class ModelManager(Container):
    """User-model management; the file dialogs are only in the button handlers.

    Parameters
    ----------
    on_change : callable, optional
        Called (in the main thread) after any change, e.g. to refresh model lists.
    notify : callable, optional
        ``notify(message, error: bool)`` shows a message to the user.
    """

    def __init__(self, on_change: Callable[[], None] | None = None,
                 notify: Callable[[str, bool], None] | None = None):
        self.model = ComboBox(label="User model", choices=_user_model_names)
        self.new_name = LineEdit(label="New name")
        self.rename_btn = PushButton(text="Rename")
        self.export_btn = PushButton(text="Export...")
        self.import_btn = PushButton(text="Import...")
        self.delete_btn = PushButton(text="Delete")
        self.info = status_label()
        buttons = Container(widgets=[Container(widgets=[self.rename_btn, self.export_btn], layout="horizontal",
                                               labels=False),
                                     Container(widgets=[self.import_btn, self.delete_btn], layout="horizontal",
                                               labels=False)], labels=False)
        buttons.margins = (0, 0, 0, 0)
        super().__init__(widgets=[self.model, self.new_name, buttons, self.info])
        self.margins = (0, 0, 0, 0)
        self._on_change = on_change or (lambda: None)
        self._notify = notify or (lambda msg, error=False: None)
        self.rename_btn.changed.connect(self._rename_clicked)
        self.export_btn.changed.connect(self._export_clicked)
        self.import_btn.changed.connect(self._import_clicked)
        self.delete_btn.changed.connect(self._delete_clicked)
        self.model.changed.connect(self._show_info)
        self._show_info()

    # -- actions (no dialogs; tests call these) -------------------------------------------
    def refresh(self) -> None:
        """Re-read the user models."""
        self.model.reset_choices()
        self._show_info()

    def rename(self, old: str, new: str) -> zoo.ModelEntry:
        """Rename user model ``old`` to ``new``."""
        entry = zoo.rename_user_model(old, new)
        self._changed(f"renamed {old!r} to {new!r}", select=new)
        return entry

    def export(self, name: str, path) -> Path:
        """Write user (or shipped) model ``name`` to one portable file."""
        out = zoo.export_model(name, path)
        self._notify(f"exported {name!r} to {out}", False)
        return out

    def import_file(self, path, name: str | None = None) -> zoo.ModelEntry:
        """Add a model file (from ``export``) to the user models."""
        entry = zoo.import_model(path, name=name or None)
        self._changed(f"imported {entry.name!r} from {Path(path).name}", select=entry.name)
        return entry

    def delete(self, name: str) -> None:
        """Delete user model ``name`` (shipped models cannot be deleted)."""
        zoo.delete_user_model(name)
        self._changed(f"deleted {name!r}")

    # -- internals ----------------------------------------------------------------------
    def _changed(self, message: str, select: str | None = None) -> None:
        self.refresh()
        if select is not None and select in self.model.choices:
            self.model.value = select
        self._notify(message, False)
        self._on_change()

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
