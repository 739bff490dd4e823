"""``nucleiseg batch``: exit status, progress output, and a run killed half-way that resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import tifffile

from napari_nucleiseg import batch
from napari_nucleiseg.cli import main
from napari_nucleiseg.synthetic import synthetic_nuclei


def _write_images(folder, n, size=128):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        tifffile.imwrite(folder / f"img{i:02d}.tif", synthetic_nuclei((size, size), n_nuclei=8, seed=i)[0])


def test_cli_reports_failed_images_without_failing(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 2)
    (src / "broken.tif").write_text("not a tiff")
    assert main(["batch", str(src), str(out), "--overlay", "--no-uncertainty"]) == 0
    cap = capsys.readouterr()
    assert "2 of 3 images segmented" in cap.out and "1 failed" in cap.out
    assert "3/3" in cap.err and "broken.tif: FAILED" in cap.err and "img01.tif: " in cap.err
    assert (out / "img00_overlay.png").exists() and not (out / "img00_uncertainty.tif").exists()
    assert list(pd.read_csv(out / "summary.csv")["status"]) == ["error", "ok", "ok"]
    # --strict turns failed images into a non-zero exit; finished images are not redone
    assert main(["batch", str(src), str(out), "--overlay", "--no-uncertainty", "--strict", "-q"]) == 2
    cap = capsys.readouterr()
    assert "0 of 3 images segmented, 2 already done, 1 failed" in cap.out and cap.err.count("failed: broken.tif") == 1


def test_cli_fatal_errors_exit_non_zero(tmp_path, capsys):
    src = tmp_path / "in"
    _write_images(src, 1)
    assert main(["batch", str(src), str(src)]) == 1
    assert "input folder" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "nope"), str(tmp_path / "out")]) == 1
    assert main(["batch", str(src), str(tmp_path / "out"), "--model", "nope"]) == 1
    assert "unknown model" in capsys.readouterr().err
    assert not (tmp_path / "out" / "summary.csv").exists()


def _finished(out):
    return sorted(p for p in (out / batch.STATE_DIR).glob("*.json"))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_run_resumes_without_redoing_finished_images(tmp_path):
    n = 12
    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, n, size=192)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "napari_nucleiseg", "batch", str(src), str(out), "-q"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(_finished(out)) < 3:
            assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()!r}"
            assert time.monotonic() < deadline, "no image finished in time"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # no clean-up at all, as in a power cut or an OOM kill
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = {json.loads(p.read_text())["row"]["file"] for p in _finished(out)}
    print(f"killed after {len(done_before)} of {n} images")
    assert 3 <= len(done_before) < n
    assert json.loads((out / batch.MANIFEST_NAME).read_text())["status"] == "running"
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("img*")
              if p.name.split("_")[0] + ".tif" in done_before}
    assert len(stamps) == 4 * len(done_before)

    res = batch.run_batch(src, out)

    assert res.status == "completed" and res.n_ok == n
    s = res.summary.set_index("file")
    assert set(s.index[s["from_previous_run"]]) == done_before
    for name, mtime in stamps.items():
        assert (out / name).stat().st_mtime_ns == mtime, f"{name} was written again"
    assert not list(out.rglob("*.part"))
    for i in range(n):
        labels = tifffile.imread(out / f"img{i:02d}_labels.tif")
        assert labels.shape == (192, 192) and labels.max() == s.loc[f"img{i:02d}.tif", "nuclei"]
        assert tifffile.imread(out / f"img{i:02d}_probability.tif").shape == (192, 192)
        assert tifffile.imread(out / f"img{i:02d}_uncertainty.tif").shape == (192, 192)
        assert len(pd.read_csv(out / f"img{i:02d}_nuclei.csv")) == s.loc[f"img{i:02d}.tif", "nuclei"]
    man = json.loads((out / batch.MANIFEST_NAME).read_text())
    assert man["status"] == "completed" and man["previous_runs"][-1]["status"] == "running"
