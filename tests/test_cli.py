import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_nucleiseg import segment
from napari_nucleiseg.cli import main
from napari_nucleiseg.evaluation.metrics import evaluate_image, summarize
from napari_nucleiseg.io.images import read_labels


def test_segment_writes_all_outputs(tmp_path, sample_dir):
    out = tmp_path / "out"
    rc = main(["segment", str(sample_dir / "sparse_nuclei.tif"), "--out", str(out), "--overlay"])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"sparse_nuclei_{k}" for k in
                           ("labels.tif", "probability.tif", "uncertainty.tif", "nuclei.csv", "overlay.png"))
    labels = tifffile.imread(out / "sparse_nuclei_labels.tif")
    table = pd.read_csv(out / "sparse_nuclei_nuclei.csv")
    assert len(table) == len(np.unique(labels)) - 1 > 0


def test_corrupt_file_one_line_error_nonzero_exit_no_outputs(tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage that is not a tiff")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "napari_nucleiseg", "segment", str(bad), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "broken.tif" in err[0] and "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_two_channel_tiff_fails_with_a_message_that_names_the_file(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "dapi_gfp.tif", np.zeros((64, 64, 2), np.uint16), photometric="minisblack",
                     planarconfig="contig")
    assert main(["segment", str(tmp_path / "dapi_gfp.tif"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dapi_gfp.tif" in err[0] and "two channels" in err[0]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_unsupported_and_missing_files(tmp_path, capsys):
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    assert main(["segment", str(txt), str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "notes.txt: unsupported file type" in err and "missing.png: file not found" in err


def test_zoo_lists_models(capsys):
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert "(default)" in out and "val DSB" in out and "nucleus px" in out and "19.5" in out


def test_evaluate_folders(tmp_path, sample_dir, capsys):
    pred = tmp_path / "pred"
    main(["segment", str(sample_dir / "touching_nuclei.tif"), "--out", str(pred)])
    capsys.readouterr()
    assert main(["evaluate", str(pred), str(sample_dir / "ground_truth"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    truth = read_labels(sample_dir / "ground_truth" / "touching_nuclei.tif")
    labels = segment(tifffile.imread(sample_dir / "touching_nuclei.tif")).labels
    assert s == pytest.approx({**summarize([evaluate_image(truth, labels)]), "n_files": 1})
    assert s["n_images"] == 1 and s["n_true"] == 45 and s["dsb_score"] > 0.75  # measured 0.815


def test_evaluate_scores_a_stack_slice_by_slice_as_the_widget_does(tmp_path, sample_dir, capsys):
    from napari_nucleiseg.evaluation.metrics import evaluate_labels

    truth = read_labels(sample_dir / "ground_truth" / "touching_nuclei.tif")
    pred = segment(tifffile.imread(sample_dir / "touching_nuclei.tif")).labels
    gt_stack = np.stack([truth, truth[::-1], np.zeros_like(truth)])  # ids restart on each slice
    pred_stack = np.stack([pred, pred[::-1], np.zeros_like(pred)])
    (tmp_path / "p").mkdir()
    (tmp_path / "t").mkdir()
    tifffile.imwrite(tmp_path / "p" / "z.tif", pred_stack.astype(np.int32), photometric="minisblack")
    tifffile.imwrite(tmp_path / "t" / "z.tif", gt_stack.astype(np.int32), photometric="minisblack")
    assert main(["evaluate", str(tmp_path / "p"), str(tmp_path / "t"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    widget, _ = evaluate_labels(gt_stack, pred_stack)
    assert s == pytest.approx({**widget, "n_files": 1})
    assert s["n_images"] == 2 and s["n_true"] == 2 * 45 and s["dsb_score"] > 0.75
    assert main(["evaluate", str(tmp_path / "p"), str(tmp_path / "t")]) == 0
    assert "images        1 (2 scored: stacks slice by slice)" in capsys.readouterr().out


def test_stack_is_segmented_per_plane(tmp_path, sample_dir):
    plane = tifffile.imread(sample_dir / "sparse_nuclei.tif")
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([plane, plane[::-1]]))
    assert main(["segment", str(tmp_path / "stack.tif"), "--out", str(tmp_path / "o"), "--overlay"]) == 0
    labels = tifffile.imread(tmp_path / "o" / "stack_labels.tif")
    table = pd.read_csv(tmp_path / "o" / "stack_nuclei.csv")
    assert labels.shape == (2, *plane.shape)
    assert set(table["plane"]) == {0, 1}
    n0 = len(np.unique(labels[0])) - 1
    assert (table["plane"] == 0).sum() == n0 and labels[1][labels[1] > 0].min() > labels[0].max()


def test_diameter_option(tmp_path, sample_dir, capsys):
    image = str(sample_dir / "sparse_nuclei.tif")
    with pytest.raises(SystemExit) as exc:
        main(["segment", image, "--out", str(tmp_path / "o"), "--diameter", "huge"])
    assert exc.value.code == 2 and "diameter must be 'auto', 'off' or a number" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["segment", image, "--out", str(tmp_path / "o"), "--diameter", "off"]) == 0
    off = tifffile.imread(tmp_path / "o" / "sparse_nuclei_labels.tif")
    capsys.readouterr()
    assert main(["segment", image, "--out", str(tmp_path / "a"), "--diameter", "60"]) == 0
    assert "large nuclei: segmented at 0.33x" in capsys.readouterr().out
    shrunk = tifffile.imread(tmp_path / "a" / "sparse_nuclei_labels.tif")
    assert shrunk.shape == off.shape and shrunk.max() > 0  # predicted at a third of the size, written full size
    assert not np.array_equal(shrunk, off)
    assert main(["segment", image, "--out", str(tmp_path / "s"), "--diameter", "8"]) == 0
    assert "small nuclei: segmented at 2.00x" in capsys.readouterr().out  # enlarged, at most 2x
    assert tifffile.imread(tmp_path / "s" / "sparse_nuclei_labels.tif").shape == off.shape


def test_segment_batch_and_evaluate_take_the_same_segmentation_options():
    from napari_nucleiseg.cli import build_parser
    from napari_nucleiseg.options import SegmentOptions

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command in ("segment", "batch", "evaluate"):
        dests = {a.dest for a in sub.choices[command]._actions}
        assert set(SegmentOptions.names()) <= dests, command
    args = sub.choices["segment"].parse_args(["x.tif", "--out", "o", "--tile", "512", "--invert", "--min-size", "9"])
    from napari_nucleiseg.cli.options import segment_options

    opts = segment_options(args)
    assert (opts.tile, opts.invert, opts.min_size, opts.diameter) == (512, True, 9, "auto")


def test_segment_without_out_writes_next_to_the_input(tmp_path, sample_dir):
    import shutil

    img = tmp_path / "sparse_nuclei.tif"
    shutil.copy(sample_dir / "sparse_nuclei.tif", img)
    assert main(["segment", str(img), "--no-probability", "--no-uncertainty"]) == 0
    assert (tmp_path / "sparse_nuclei_labels.tif").exists() and (tmp_path / "sparse_nuclei_nuclei.csv").exists()
    assert not (tmp_path / "sparse_nuclei_probability.tif").exists()


def test_a_reader_that_leaves_early_is_no_error():
    """`nucleiseg zoo | head -1`: a closed pipe ends the listing quietly, status 0 (unbuffered, so
    the first line already meets the closed pipe)."""
    import os

    proc = subprocess.Popen([sys.executable, "-m", "napari_nucleiseg", "zoo"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""


def test_evaluate_says_which_files_it_could_not_pair(tmp_path, capsys):
    truth = np.zeros((32, 32), np.uint16)
    truth[4:12, 4:12] = 1
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    for stem in ("a", "b"):
        tifffile.imwrite(tmp_path / "gt" / f"{stem}.tif", truth)
    tifffile.imwrite(tmp_path / "pred" / "a_labels.tif", truth)
    tifffile.imwrite(tmp_path / "pred" / "a_probability.tif", truth.astype(np.float32))  # a map, not labels
    tifffile.imwrite(tmp_path / "pred" / "b_mask.tif", truth)
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt")]) == 0
    err = capsys.readouterr().err
    assert "1 ground truth without a prediction, not scored: b" in err
    assert "1 predictions without ground truth, not scored: b_mask" in err and "a_probability" not in err


def test_evaluate_refusals_name_the_files(tmp_path, capsys):
    truth = np.zeros((32, 32), np.uint16)
    truth[4:12, 4:12] = 1
    for folder in ("gt", "pred", "data/images", "data/labels"):
        (tmp_path / folder).mkdir(parents=True)
    tifffile.imwrite(tmp_path / "gt" / "a.tif", truth)
    tifffile.imwrite(tmp_path / "pred" / "a_labels.tif", truth[:20])
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "pred" / "a_labels.tif") in err and "shape" in err
    tifffile.imwrite(tmp_path / "data" / "images" / "b.tif", np.zeros((32, 32, 2), np.uint8), photometric="minisblack",
                     planarconfig="contig")
    tifffile.imwrite(tmp_path / "data" / "labels" / "b.tif", truth)
    assert main(["evaluate", "--data", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "data" / "images" / "b.tif") in err, err


def test_a_folder_in_the_way_of_one_result_fails_that_image_only(tmp_path, capsys):
    from napari_nucleiseg.synthetic import synthetic_nuclei

    for name in ("a", "b"):
        tifffile.imwrite(tmp_path / f"{name}.tif", synthetic_nuclei((96, 96), n_nuclei=5, seed=0)[0])
    (tmp_path / "res" / "a_labels.tif").mkdir(parents=True)
    assert main(["segment", str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), "--out", str(tmp_path / "res")]) == 1
    err = capsys.readouterr().err
    assert "a_labels.tif: a folder of that name is in the way" in err
    assert (tmp_path / "res" / "b_labels.tif").is_file()  # the run went on (it stopped: "cannot write results")


@pytest.mark.parametrize("args, message", [
    (["--out", "FILE"], "is a file, not a folder"),
    (["--block", "10"], "block must be a whole number of at least 16"),
    (["--level", "-1"], "numbered from 0"),
    (["--scheduler", "foo"], "not a Dask scheduler address"),
])
def test_output_and_out_of_core_options_are_refused_before_any_image(tmp_path, capsys, args, message):
    from napari_nucleiseg.synthetic import synthetic_nuclei

    tifffile.imwrite(tmp_path / "a.tif", synthetic_nuclei((96, 96), n_nuclei=5, seed=0)[0])
    (tmp_path / "FILE").write_text("")
    args = [str(tmp_path / "FILE") if a == "FILE" else a for a in args]
    assert main(["segment", str(tmp_path / "a.tif"), *args]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a_labels.tif").exists()  # the small image was segmented first


def test_evaluate_pairs_named_files_and_ome_names_and_refuses_options_it_would_ignore(tmp_path, capsys):
    truth = np.zeros((32, 32), np.uint16)
    truth[4:12, 4:12] = 1
    tifffile.imwrite(tmp_path / "x_labels.tif", truth)
    tifffile.imwrite(tmp_path / "mask_x.tif", truth)
    assert main(["evaluate", str(tmp_path / "x_labels.tif"), str(tmp_path / "mask_x.tif")]) == 0  # two files
    assert "images        1" in capsys.readouterr().out
    for folder in ("gt", "pred"):
        (tmp_path / folder).mkdir()
    tifffile.imwrite(tmp_path / "gt" / "slide.ome.tif", truth)  # segment names its result slide_labels.tif
    tifffile.imwrite(tmp_path / "pred" / "slide_labels.tif", truth)
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt")]) == 0
    assert "images        1" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--model", "nosuch", "--tile", "16"]) == 0
    assert "--model, --tile apply to --data only, ignored" in capsys.readouterr().err  # it was silent
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--data", str(tmp_path)]) == 1
    assert "not both" in capsys.readouterr().err
