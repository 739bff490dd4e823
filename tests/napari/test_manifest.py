"""The npe2 manifest: found through the entry point, valid, every command of ours importable."""

import importlib

import pytest

npe2 = pytest.importorskip("npe2")

OURS = ["reader:get_reader", "samples:make_sparse_sample", "samples:make_crowded_sample",
        "samples:make_brightfield_sample", "segment_widget:SegmentWidget",
        "evaluate_widget:EvaluateWidget", "review_widget:ReviewWidget"]


def test_manifest_is_found_and_valid():
    pm = npe2.PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-nucleiseg")
    assert manifest.display_name == "NucleiSeg"
    ids = {c.id for c in manifest.contributions.commands}
    assert all(i.startswith("napari-nucleiseg.") for i in ids)
    menu = {m.command for m in manifest.contributions.menus["napari/layers/segment"]}
    assert {"napari-nucleiseg.make_segment_widget", "napari-nucleiseg.make_evaluate_widget",
            "napari-nucleiseg.make_review_widget"} <= menu
    keys = {s.key for s in manifest.contributions.sample_data}
    assert {"synthetic_nuclei", "crowded_nuclei", "brightfield_tissue"} <= keys


@pytest.mark.parametrize("python_name", OURS)
def test_our_commands_import(python_name):
    module, attr = python_name.split(":")
    mod = importlib.import_module(f"napari_nucleiseg._napari.{module}")
    assert callable(getattr(mod, attr))


def test_importing_the_package_does_not_import_qt():
    import subprocess
    import sys

    code = ("import sys, napari_nucleiseg, napari_nucleiseg.inference.pipeline, napari_nucleiseg.zoo; "
            "bad = [m for m in ('qtpy', 'PyQt6', 'PyQt5', 'PySide6', 'napari', 'magicgui') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
