"""The npe2 manifest: found through the entry point, valid, every command of ours importable."""

import importlib

import npe2
import pytest

OURS = ["reader:get_reader", "writer:write_labels", "samples:make_sparse_sample", "samples:make_crowded_sample",
        "samples:make_brightfield_sample", "segment_widget:SegmentWidget",
        "evaluate_widget:EvaluateWidget", "review_widget:ReviewWidget",
        "finetune_widget:FinetuneWidget", "batch_widget:BatchWidget"]

#: Every widget of napari.yaml: display name -> class.
WIDGETS = {"Segment Nuclei": "SegmentWidget", "Evaluate Against Ground Truth": "EvaluateWidget",
           "Review Least Certain Nuclei": "ReviewWidget", "Fine-tune Model": "FinetuneWidget",
           "Batch Segment Folder": "BatchWidget"}


def test_manifest_is_found_and_valid():
    pm = npe2.PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-nucleiseg")
    assert manifest.display_name == "NucleiSeg"
    ids = {c.id for c in manifest.contributions.commands}
    assert all(i.startswith("napari-nucleiseg.") for i in ids)
    assert {c.python_name for c in manifest.contributions.commands} == {
        f"napari_nucleiseg._napari.{name}" for name in OURS}
    widgets = {w.display_name: w.command for w in manifest.contributions.widgets}
    assert set(widgets) == set(WIDGETS)
    menu = {m.command for m in manifest.contributions.menus["napari/layers/segment"]}
    assert menu == set(widgets.values())
    keys = {s.key for s in manifest.contributions.sample_data}
    assert {"synthetic_nuclei", "crowded_nuclei", "brightfield_tissue"} <= keys


@pytest.mark.parametrize("python_name", OURS)
def test_our_commands_import(python_name):
    module, attr = python_name.split(":")
    mod = importlib.import_module(f"napari_nucleiseg._napari.{module}")
    assert callable(getattr(mod, attr))


@pytest.mark.parametrize("display_name", sorted(WIDGETS))
def test_every_widget_opens_from_the_manifest(viewer, display_name):
    _, widget = viewer.window.add_plugin_dock_widget("napari-nucleiseg", display_name)
    assert type(widget).__name__ == WIDGETS[display_name]


def test_importing_the_package_does_not_import_qt():
    import subprocess
    import sys

    code = ("import sys, napari_nucleiseg, napari_nucleiseg.inference.stack, napari_nucleiseg.zoo, "
            "napari_nucleiseg.batch, napari_nucleiseg.training.finetune, napari_nucleiseg.evaluation.metrics, "
            "napari_nucleiseg.io.results, napari_nucleiseg.cli; "
            "bad = [m for m in ('qtpy', 'PyQt6', 'PyQt5', 'PySide6', 'napari', 'magicgui') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_packaged_manifest_is_a_real_file_and_the_root_one_is_the_same():
    # a symlink inside the package becomes a text file on a Windows checkout, and so would the wheel's copy
    from pathlib import Path

    import napari_nucleiseg

    packaged = Path(napari_nucleiseg.__file__).parent / "napari.yaml"
    root = Path(__file__).resolve().parents[2] / "napari.yaml"
    assert packaged.is_file() and not packaged.is_symlink()
    assert npe2.PluginManifest.from_file(packaged).name == "napari-nucleiseg"
    if root.exists():  # a source checkout: the manifest at the repository root is the packaged one
        assert root.read_bytes() == packaged.read_bytes()


def test_the_command_line_help_and_the_reader_check_load_no_torch(tmp_path):
    # `nucleiseg --help` and napari asking the reader about a file should not wait seconds for torch
    import subprocess
    import sys

    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8), np.uint16))
    code = ("import sys\nfrom napari_nucleiseg.cli import build_parser\n"
            "from napari_nucleiseg._napari.reader import get_reader\n"
            f"build_parser().format_help(); assert get_reader({str(tmp_path / 'a.tif')!r}) is not None\n"
            "print([m for m in ('torch', 'skimage') if m in sys.modules])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr


def test_train_help_names_every_architecture():
    from napari_nucleiseg.cli import build_parser
    from napari_nucleiseg.models import ARCHITECTURES

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    text = " ".join(train.format_help().split())
    assert all(name in text for name in ARCHITECTURES)
