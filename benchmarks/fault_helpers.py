"""What the fault cases share: the case registry, an in-process command line, test images and
patches (``fault_suite.py`` runs the cases; ``tests/test_faults.py`` runs the fast ones)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Case:
    """One fault: what a careful user does, what should happen, and the check.

    ``run(tmp)`` returns ``(observed, passed)``; ``ci`` cases also run in CI (tests/test_faults.py).
    """

    name: str
    expected: str
    run: Callable[[Path], tuple[str, bool]]
    ci: bool


CASES: list[Case] = []


def case(name: str, expected: str, ci: bool = True):
    """Register a fault case (a decorator)."""
    def register(fn):
        CASES.append(Case(name, expected, fn, ci))
        return fn
    return register


def cli(*argv) -> tuple[int, str, str]:
    """``nucleiseg ARGV`` in this process: exit status, stdout and stderr."""
    from napari_nucleiseg.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse refusals
            rc = exc.code if isinstance(exc.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


def one_line(err: str) -> bool:
    """True for a message the user can read: one line, no traceback."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return len(lines) == 1 and "Traceback" not in err


def short(text: str, n: int = 110) -> str:
    """One line of at most ``n`` characters for the table."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def nuclei_image(size: int = 128, seed: int = 0) -> np.ndarray:
    from napari_nucleiseg.synthetic import synthetic_nuclei

    return synthetic_nuclei((size, size), n_nuclei=8, seed=seed)[0]


def write_images(folder: Path, n: int, size: int = 128, prefix: str = "img") -> list[Path]:
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{prefix}{i}.tif" for i in range(n)]
    for i, p in enumerate(paths):
        tifffile.imwrite(p, nuclei_image(size, seed=i))
    return paths


def files_in(folder: Path) -> list[str]:
    """Every file below ``folder`` (hidden ones too), relative, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@contextlib.contextmanager
def patched(obj, name: str, value):
    """``obj.name = value`` for the duration of the block."""
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def failing_writer(errno_code: int, after: int = 0):
    """A stand-in for ``io.results.tiff_writer`` whose writers fail with ``errno_code`` after
    ``after`` successful files (a disk that fills up, a folder that turns read-only)."""
    import errno as errno_mod

    from napari_nucleiseg.io import results

    real = results.tiff_writer
    count = {"n": 0}

    def make(data, compress=True, pixel_size=None, labels=False):
        write = real(data, compress, pixel_size, labels)

        def maybe_fail(tmp):
            count["n"] += 1
            if count["n"] > after:
                raise OSError(errno_code, os.strerror(errno_code), tmp)
            write(tmp)
        return maybe_fail

    make.errno_name = errno_mod.errorcode[errno_code]
    return make


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def env_var(name: str, value: str):
    """Set the environment variable ``name`` for the duration of the block."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextlib.contextmanager
def user_dir(folder: Path):
    """Point the user-models folder at ``folder`` (``NUCLEISEG_USER_DIR``)."""
    with env_var("NUCLEISEG_USER_DIR", str(folder)):
        yield folder / "models"


def python(code: str, **kwargs):
    """Run ``code`` in a fresh Python (this interpreter) and return the finished process."""
    import subprocess

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, **kwargs)
