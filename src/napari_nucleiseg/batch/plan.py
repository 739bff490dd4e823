"""Planning a run: which images, where their outputs go, what a finished marker must say."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import NucleisegError
from ..io.images import is_image_file
from ..io.results import result_of, result_stem
from .fingerprint import options_fingerprint, weights_sha256
from .options import MANIFEST_NAME, OUTPUT_SUFFIXES, STATE_DIR, BatchOptions


@dataclass(frozen=True)
class ImageTask:
    """One image of a batch: where it is, where its outputs go and what a finished marker must say.

    All fields are plain strings so that tasks travel to process-pool and Dask workers.
    """

    source: str
    rel: str
    stem: str
    out_stem: str
    marker: str
    fingerprint: str
    weights_sha256: str
    #: the fingerprint as versions before 2026-12-07 spelt it (with the device's name), still accepted
    legacy_fingerprint: str = ""


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _is_batch_output(folder: Path) -> bool:
    """True for a folder an earlier batch run wrote into (its state folder or manifest is there)."""
    return (folder / STATE_DIR).is_dir() or (folder / MANIFEST_NAME).is_file()


def _is_our_output(path: Path, root: Path, out_dir: Path | None) -> bool:
    """True for result files, never inputs: everything in the output folder when it lies inside
    the input folder, results in the input folder itself when they are the same (``force``), and
    any folder below the input folder that an earlier batch run wrote into. An input folder inside
    the output folder keeps its images."""
    if out_dir is not None and _inside(out_dir, root) and _inside(path, out_dir):
        if out_dir != root or path.name.endswith(OUTPUT_SUFFIXES):
            return True
    parent = path.parent
    while parent != root and _inside(parent, root):
        if _is_batch_output(parent):
            return True
        parent = parent.parent
    return False


def find_images(input_dir, pattern: str = "*", recursive: bool = False, exclude_dir=None) -> list[Path]:
    """Image files of a folder, sorted by relative path.

    Parameters
    ----------
    input_dir : str or Path
    pattern : str
        Glob pattern (``"*.tif"``, ``"plate1_*"``); only files with an image suffix
        (``io.IMAGE_SUFFIXES``, any case) are kept, hidden files are skipped.
    recursive : bool
        Also search sub-folders.
    exclude_dir : str or Path, optional
        The output folder: nothing in it is taken as an input (only its result files when it is
        the input folder), nor anything in another folder an earlier batch run wrote into.
        Result files that ``nucleiseg segment`` wrote next to an image (``<stem>_labels.tif``
        ...) are never inputs either.

    Returns
    -------
    list of Path
    """
    root = Path(input_dir)
    out = Path(exclude_dir).resolve() if exclude_dir is not None else None
    found = root.rglob(pattern) if recursive else root.glob(pattern)
    if Path(pattern).is_absolute():
        raise NucleisegError(f"the pattern {pattern!r} must be relative to the input folder (e.g. '*.tif')")
    files, stems_in = [], {}
    for p in found:
        rel_parts = p.relative_to(root).parts
        if any(part.startswith(".") for part in rel_parts) or not p.is_file() or not is_image_file(p):
            continue
        if _is_our_output(p.resolve(), root.resolve(), out) or _is_result_beside_image(p, stems_in):
            continue
        files.append(p)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _is_result_beside_image(path: Path, stems_in: dict) -> bool:
    """True for ``<stem>_labels.tif`` and the other result files (``OUTPUT_SUFFIXES``) of an image
    ``<stem>.*`` in the same folder, where ``nucleiseg segment`` writes them without ``--out``, or
    beside their ``<stem>_nuclei.csv`` (an ``--out`` folder inside the input folder).
    ``stems_in`` caches the image stems of each folder."""
    base = result_of(path)
    if base is None:
        return False
    if path.parent not in stems_in:
        stems_in[path.parent] = {result_stem(p) for p in path.parent.iterdir() if is_image_file(p)}
    return base in stems_in[path.parent] or (path.parent / f"{base}_nuclei.csv").is_file()


def _stems(files: list[Path], root: Path) -> list[str]:
    """Output stems (relative path without suffix, ``io.results.result_stem``); ``a.tif`` and ``a.png``
    become ``a_tif``, ``a_png``.

    Stems are unique ignoring case (a case-insensitive disk, or ``a.tif`` beside ``a.TIF``): a stem
    still taken gets ``_2``, ``_3``, ... in the order of ``files``.
    """
    stems = [(p.relative_to(root).parent / result_stem(p)).as_posix() for p in files]
    counts = Counter(s.casefold() for s in stems)
    stems = [s if counts[s.casefold()] == 1 else f"{s}_{p.suffix.lstrip('.').lower()}" for s, p in zip(stems, files)]
    taken = Counter(s.casefold() for s in stems)
    out, used = [], set()
    for s in stems:
        stem, n = s, 1
        while stem.casefold() in used or (stem != s and stem.casefold() in taken):
            n += 1
            stem = f"{s}_{n}"
        used.add(stem.casefold())
        out.append(stem)
    return out


def plan_tasks(input_dir, output_dir, options: BatchOptions, pattern: str = "*", recursive: bool = False,
               model_sha256: str | None = None, entry=None) -> list[ImageTask]:
    """One :class:`ImageTask` per image found in ``input_dir`` (``entry``: the options' model,
    when the caller has looked it up already)."""
    from .. import zoo

    # absolute: process-pool and Dask workers may run in another working directory
    root, out = Path(input_dir).absolute(), Path(output_dir).absolute()
    entry = entry if entry is not None else zoo.get_entry(options.model)
    sha = model_sha256 if model_sha256 is not None else weights_sha256(entry)
    fp = options_fingerprint(options, sha, entry.target_diameter())
    legacy = options_fingerprint(options, sha, entry.target_diameter(), legacy=True)
    files = find_images(root, pattern, recursive, exclude_dir=out)
    return [ImageTask(str(p), p.relative_to(root).as_posix(), stem, str(out / stem),
                      str(out / STATE_DIR / f"{stem}.json"), fp, sha, legacy)
            for p, stem in zip(files, _stems(files, root))]


def check_folders(input_dir: Path, output_dir: Path, force: bool) -> None:
    if not input_dir.is_dir():
        raise NucleisegError(f"input folder {input_dir} does not exist or is not a folder")
    if output_dir.exists() and not output_dir.is_dir():
        raise NucleisegError(f"output {output_dir} exists and is not a folder")
    if input_dir.resolve() == output_dir.resolve() and not force:
        raise NucleisegError(
            f"the output folder is the input folder ({input_dir}); choose another output folder "
            "or insist with force=True (--force)")
