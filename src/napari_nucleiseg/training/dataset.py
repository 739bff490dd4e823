"""Training data: folders of images + label images (the shared DSB layout), loaded into memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..inference.kinds import image_kind
from ..inference.preprocess import prepare_channels
from ..io.images import IMAGE_SUFFIXES, read_image, read_labels


def default_data_dir() -> Path:
    """The shared DSB data: ``$NUCLEISEG_DATA``, else ``../shared/data/dsb2018`` from the
    working directory or from the source checkout."""
    import os

    env = os.environ.get("NUCLEISEG_DATA")
    if env:
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        cand = base.parent / "shared" / "data" / "dsb2018"
        if cand.is_dir():
            return cand
    return Path.cwd().parent / "shared" / "data" / "dsb2018"



@dataclass
class Sample:
    """One training image: prepared float32 image, int32 instance labels, its id and kind
    (``kinds.image_kind``); ``variants`` are more inputs of the same image (stain-jittered,
    ``stain_augment.stain_variants``), each drawn as often as ``image``."""

    image: np.ndarray
    labels: np.ndarray
    name: str
    kind: str = "fluorescence"
    variants: tuple = ()


def find_pairs(root) -> list[tuple[str, Path, Path]]:
    """(id, image path, label path) for ``root/images/<id>.*`` with ``root/labels/<id>.*``."""
    root = Path(root)
    img_dir, lab_dir = root / "images", root / "labels"
    if not img_dir.is_dir() or not lab_dir.is_dir():
        raise FileNotFoundError(f"{root}: expected 'images/' and 'labels/' sub-folders")
    labels = {p.stem: p for p in lab_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    pairs = []
    for p in sorted(img_dir.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in labels:
            pairs.append((p.stem, p, labels[p.stem]))
    return pairs


def read_ids(path) -> list[str]:
    """Ids listed one per line (blank lines ignored)."""
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def load_samples(root, include: set[str] | None = None, exclude: set[str] | None = None,
                 limit: int | None = None, channels: int = 1, stain_signal: str = "darkest",
                 stain_variants: int = 0) -> list[Sample]:
    """Load and prepare image/label pairs from ``root`` (see ``find_pairs``); ``channels`` and
    ``stain_signal`` are the model's input (``preprocess.prepare_channels``); stained colour
    images get ``stain_variants`` stain-jittered variants (``stain_augment.stain_variants``)."""
    from skimage.segmentation import relabel_sequential

    from .stain_augment import stain_variants as variants_of

    out = []
    for name, ip, lp in find_pairs(root):
        if include is not None and name not in include:
            continue
        if exclude is not None and name in exclude:
            continue
        img = read_image(ip)
        kind = image_kind(img)
        x = prepare_channels(img, channels=channels, kind=kind, stain_signal=stain_signal)
        more = (variants_of(img, name, stain_variants, channels, stain_signal)
                if stain_variants and kind == "stained" else ())
        # sequential ids: crops carry labels as float32, exact only up to 2**24
        labels = relabel_sequential(read_labels(lp))[0].astype(np.int32)
        out.append(Sample(x, labels, name, kind, more))
        if limit is not None and len(out) >= limit:
            break
    return out


def split_dsb(root=None, val_file=None, test_file=None,
              channels: int = 1, stain_signal: str = "darkest",
              stain_variants: int = 0) -> tuple[list[Sample], list[Sample]]:
    """The shared DSB training split and the 58 validation images of ``val.txt``.

    ``test_file`` lists held-out test ids that neither split contains; ``stain_variants`` of each
    stained training image are made (``load_samples``), none of validation images.
    """
    root = Path(root) if root is not None else default_data_dir()
    val_ids = set(read_ids(val_file or root / "val.txt"))
    test_ids = set(read_ids(test_file)) if test_file else set()
    train_root = root / "train" if (root / "train").is_dir() else root
    inputs = {"channels": channels, "stain_signal": stain_signal}
    return (load_samples(train_root, exclude=val_ids | test_ids, stain_variants=stain_variants, **inputs),
            load_samples(train_root, include=val_ids, **inputs))


def sampling_weights(samples, shares: dict[str, float] | None) -> np.ndarray | None:
    """Per-sample probabilities giving each image kind its share of training crops.

    ``shares`` maps kinds to fractions (e.g. ``{"stained": 0.25}``); kinds not named share
    the rest in proportion to their image counts. None keeps uniform sampling.
    """
    if not shares:
        return None
    kinds = [s.kind for s in samples]
    counts = {k: kinds.count(k) for k in set(kinds)}
    named = {k: v for k, v in shares.items() if k in counts}
    rest = max(0.0, 1.0 - sum(named.values()))
    n_rest = sum(c for k, c in counts.items() if k not in named)
    w = np.array([named[k] / counts[k] if k in named else rest / max(n_rest, 1) for k in kinds])
    return w / w.sum()
