"""Which files a batch takes as inputs and where their results go; options refused before any work."""

import json

import numpy as np
import pytest
import tifffile

from napari_nucleiseg import batch
from napari_nucleiseg.batch.plan import _stems, find_images
from napari_nucleiseg.cli import main
from napari_nucleiseg.errors import NucleisegError, OptionError
from napari_nucleiseg.synthetic import synthetic_nuclei


def _image(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, synthetic_nuclei((64, 64), n_nuclei=3, seed=seed)[0])


def test_stems_are_unique_ignoring_case(tmp_path):
    names = ["a.TIF", "a.tif", "a.png", "a_png.tif", "b.tif"]
    stems = _stems([tmp_path / n for n in names], tmp_path)
    assert len({s.casefold() for s in stems}) == len(names)
    assert stems[-1] == "b"  # a stem without a clash stays as it is


def test_input_folder_inside_output_folder_keeps_its_images(tmp_path):
    _image(tmp_path / "project" / "raw" / "a.tif")
    found = find_images(tmp_path / "project" / "raw", exclude_dir=tmp_path / "project")
    assert [p.name for p in found] == ["a.tif"]


def test_results_written_next_to_images_are_not_inputs(tmp_path):
    _image(tmp_path / "a.tif")
    for suffix in ("_labels.tif", "_probability.tif", "_uncertainty.tif"):
        _image(tmp_path / f"a{suffix}")
    _image(tmp_path / "b_labels.tif")  # no image "b" beside it: an input like any other
    assert [p.name for p in find_images(tmp_path)] == ["a.tif", "b_labels.tif"]
    # segment a.tif --out results, inside the input folder: recognised by the nuclei table beside them
    for suffix in ("_labels.tif", "_probability.tif"):
        _image(tmp_path / "results" / f"a{suffix}")
    (tmp_path / "results" / "a_nuclei.csv").write_text("label\n")
    assert [p.name for p in find_images(tmp_path, recursive=True)] == ["a.tif", "b_labels.tif"]


def test_bad_options_are_refused_before_any_work(tmp_path):
    _image(tmp_path / "in" / "a.tif")
    with pytest.raises(OptionError, match="threads_per_worker"):
        batch.run_batch(tmp_path / "in", tmp_path / "out", threads_per_worker=0)
    with pytest.raises(NucleisegError, match="relative"):
        batch.run_batch(tmp_path / "in", tmp_path / "out", pattern=str(tmp_path / "in" / "*.tif"))
    assert not (tmp_path / "out").exists()


def test_five_channel_tiff_needs_a_channel(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    planes = np.stack([synthetic_nuclei((64, 64), n_nuclei=3, seed=s)[0] for s in range(5)])
    tifffile.imwrite(folder / "five.tif", planes, metadata={"axes": "CYX"})
    assert main(["batch", str(folder), str(tmp_path / "out"), "-q"]) == 0
    assert "5 channels" in capsys.readouterr().err and not (tmp_path / "out" / "five_labels.tif").exists()
    assert main(["batch", str(folder), str(tmp_path / "out2"), "-q", "--channel", "0"]) == 0
    assert tifffile.imread(tmp_path / "out2" / "five_labels.tif").shape == (64, 64)


def test_segment_refuses_inputs_whose_results_clash(tmp_path, capsys):
    _image(tmp_path / "plate1" / "A01.tif", 1)
    _image(tmp_path / "plate2" / "A01.tif", 2)
    args = ["segment", str(tmp_path / "plate1" / "A01.tif"), str(tmp_path / "plate2" / "A01.tif")]
    assert main([*args, "--out", str(tmp_path / "res")]) == 1
    assert "would write the same result files" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()
    assert main(args) == 0  # next to each input: no clash


def test_segment_refuses_results_that_would_replace_another_input(tmp_path, capsys):
    _image(tmp_path / "a.tif", 1)
    truth = np.full((64, 64), 7, np.uint16)
    tifffile.imwrite(tmp_path / "a_labels.tif", truth)
    assert main(["segment", str(tmp_path / "a.tif"), str(tmp_path / "a_labels.tif")]) == 1
    assert "would replace the input" in capsys.readouterr().err
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a_labels.tif"), truth)
    assert main(["segment", str(tmp_path / "a.tif"), str(tmp_path / "a_labels.tif"), "--out",
                 str(tmp_path / "res")]) == 0


def test_an_ome_tiff_gets_the_same_result_name_from_every_command(tmp_path):
    _image(tmp_path / "in" / "slide.ome.tif")
    assert main(["segment", str(tmp_path / "in" / "slide.ome.tif"), "--out", str(tmp_path / "seg")]) == 0
    assert main(["batch", str(tmp_path / "in"), str(tmp_path / "bat"), "-q"]) == 0
    slide = str(tmp_path / "in" / "slide.ome.tif")
    assert main(["segment", slide, "--out-of-core", "--out", str(tmp_path / "ooc")]) == 0
    assert (tmp_path / "seg" / "slide_labels.tif").exists() and (tmp_path / "bat" / "slide_labels.tif").exists()
    assert (tmp_path / "ooc" / "slide_outofcore").is_dir()
    # segment's results beside the image are still recognised as results by batch
    assert main(["segment", str(tmp_path / "in" / "slide.ome.tif")]) == 0
    assert [p.name for p in find_images(tmp_path / "in")] == ["slide.ome.tif"]


def test_batch_finishes_its_summary_with_a_file_name_that_is_not_utf8(tmp_path):
    import os

    import pandas as pd

    src = tmp_path / "in"
    _image(src / "good.tif", 1)
    odd = os.path.join(os.fsencode(src), b"caf\xe9.tif")
    try:
        with open(odd, "wb") as fh:
            fh.write((src / "good.tif").read_bytes())
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    assert main(["batch", str(src), str(tmp_path / "out"), "-q"]) == 0
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert sorted(summary["file"]) == ["caf\\udce9.tif", "good.tif"] and (summary["status"] == "ok").all()
    manifest = json.loads((tmp_path / "out" / "run_manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["ok"] == 2


def test_segment_run_twice_on_a_folder_skips_its_earlier_results(tmp_path, capsys):
    _image(tmp_path / "a.tif", 1)
    assert main(["segment", str(tmp_path / "a.tif")]) == 0
    again = sorted(str(p) for p in tmp_path.glob("*.tif"))  # what `segment *.tif` hands over the second time
    assert len(again) == 4
    assert main(["segment", *again]) == 0
    err = capsys.readouterr().err
    assert err.count("is a result of an earlier run, not an image: skipped") == 3
    assert not (tmp_path / "a_labels_labels.tif").exists()
