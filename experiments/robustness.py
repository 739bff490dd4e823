"""How the models hold up when the DSB validation images are imaged differently.

Other labs' images differ from DSB in magnification, noise, focus, illumination and bit depth.
This perturbs the DSB validation images (``val.txt``) in those ways, one at a time, and scores each
model and the classical baseline on every perturbed copy in one process, so a weakness that only
an unseen set would show can be found (and a fix measured) without such a set. It is a guide for
choices of input handling and augmentation, not a score to tune to.

    python experiments/robustness.py resunet32 [MODEL ...] [--threads 2] [--kinds fluorescence] [--only 'noise,blur']
        [--no-denoise-too]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.transform import resize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from benchmark import classical, load_sets, use_float32  # noqa: E402
from devtools import kept_below  # noqa: E402

from napari_nucleiseg import segment  # noqa: E402
from napari_nucleiseg.evaluation.metrics import evaluate_image, summarize  # noqa: E402
from napari_nucleiseg.inference import sizing  # noqa: E402
from napari_nucleiseg.inference.kinds import image_kind  # noqa: E402
from napari_nucleiseg.training.dataset import default_data_dir  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "robustness.md"
REPORT = """# Robustness to how an image was taken

The {n} DSB validation images (`val.txt`), perturbed one way at a time as other labs' images differ
from DSB, scored per model (as `segment()` runs it: specialists, size normalisation, no TTA) beside
the classical Otsu + watershed baseline in the same process. DSB score / AP@0.5. The perturbations
are defined in `experiments/robustness.py`; the copies are still validation images, so this guides
choices of augmentation and input handling and is not a held-out score. What was decided on it is
in [training_log.md](training_log.md).

Reproduce: `{command}`

{table}
"""


def _planes(image: np.ndarray) -> np.ndarray:
    """float32 copy with alpha dropped (perturbations act on the colour planes)."""
    img = np.asarray(image, np.float32)
    return img[..., :3] if img.ndim == 3 else img


def _as_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _scaled(factor: float):
    def perturb(image, labels, rng):
        img = _planes(image)
        shape = tuple(max(16, round(n * factor)) for n in labels.shape)
        out = resize(img, shape + img.shape[2:], order=1, preserve_range=True, anti_aliasing=factor < 1)
        return _as_uint8(out), resize(labels, shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
    return perturb


def _noise(image, labels, rng):
    """Gaussian read noise of 8 % of the image's 1-99.8 percentile span (a dim, noisy acquisition)."""
    img = _planes(image)
    lo, hi = np.percentile(img, (1, 99.8))
    return _as_uint8(img + rng.normal(0, 0.08 * max(hi - lo, 1.0), img.shape)), labels


def _photons(image, labels, rng):
    """Photon-limited, as a colour camera sees it: each channel Poisson counts with 15 photons over
    the image's 1-99.8 percentile span, above 1 photon of background, saved as 8-bit."""
    img = _planes(image)
    lo, hi = np.percentile(img, (1, 99.8))
    counts = rng.poisson(np.clip((img - lo) / max(hi - lo, 1.0), 0, None) * 15.0 + 1.0)
    return _as_uint8(counts * (255.0 / 22.5)), labels


def _jpeg(image, labels, rng):
    """Shared as a JPEG (quality 50, the default chroma subsampling), as images often are."""
    import io

    from PIL import Image

    img = _as_uint8(_planes(image))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=50)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue()))), labels


def _blur(image, labels, rng):
    """Out of focus: Gaussian blur, sigma 2 px."""
    img = _planes(image)
    return _as_uint8(ndi.gaussian_filter(img, (2.0, 2.0, 0.0)[:img.ndim])), labels


def _uneven(image, labels, rng):
    """Uneven illumination: light falls from 100 % to 30 % across the field (vignetting, a tilted lamp)."""
    img = _planes(image)
    ramp = np.linspace(1.0, 0.3, labels.shape[1], dtype=np.float32)
    return _as_uint8(img * (ramp[:, None] if img.ndim == 3 else ramp)), labels


def _uneven_mild(image, labels, rng):
    """Milder uneven illumination: light falls from 100 % to 60 % across the field."""
    img = _planes(image)
    ramp = np.linspace(1.0, 0.6, labels.shape[1], dtype=np.float32)
    return _as_uint8(img * (ramp[:, None] if img.ndim == 3 else ramp)), labels


def _vignette(image, labels, rng):
    """Vignetting: light falls with the square of the distance from the centre, to 40 % in the corners."""
    img = _planes(image)
    h, w = labels.shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    light = (1.0 - 0.3 * (yy ** 2 + xx ** 2)).astype(np.float32)
    return _as_uint8(img * (light[..., None] if img.ndim == 3 else light)), labels


def _camera16(image, labels, rng):
    """A 16-bit camera image: grey, a camera offset of 1,000 counts, the signal over 4x the 8-bit range."""
    img = _planes(image)
    grey = img.max(axis=-1) if img.ndim == 3 else img
    return (grey * 4 + 1000).astype(np.uint16), labels


def _dim(image, labels, rng):
    """Low signal: the image at a tenth of its brightness, 8-bit (quantised to about 25 levels)."""
    return _as_uint8(_planes(image) * 0.1), labels


def _debris(image, labels, rng):
    """Debris: a saturated disk covering 1 % of the field, where it lies farthest from any nucleus
    (white in a fluorescence image, black dust in a bright-field or stained one); nuclei under it
    are dropped from the ground truth."""
    img = _planes(image)
    h, w = labels.shape
    far = ndi.distance_transform_edt(labels == 0)
    cy, cx = np.unravel_index(np.argmax(far), far.shape)
    yy, xx = np.ogrid[:h, :w]
    disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 0.01 * h * w / np.pi
    out = img.copy()
    out[disk] = 255.0 if image_kind(image) == "fluorescence" else 0.0
    return _as_uint8(out), np.where(disk, 0, labels)


PERTURBATIONS = {
    "as is": lambda image, labels, rng: (image, labels),
    "noise": _noise,
    "photon noise": _photons,
    "JPEG 50": _jpeg,
    "blur": _blur,
    "uneven light": _uneven,
    "uneven light (mild)": _uneven_mild,
    "vignetting": _vignette,
    "debris": _debris,
    "16-bit camera": _camera16,
    "dim 8-bit": _dim,
    "scale 0.5x": _scaled(0.5),
    "scale 1.5x": _scaled(1.5),
    "scale 2x": _scaled(2.0),
    "scale 4x": _scaled(4.0),
}


def score(fn, data, name: str) -> dict:
    """Mean scores of ``fn(image) -> labels`` over ``(image, labels)`` pairs."""
    rows = [evaluate_image(labels, fn(image)) for image, labels in data]
    out = summarize(rows)
    print(f"  {name}: DSB {out['dsb_score']:.3f}, AP@0.5 {out['ap50']:.3f}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kinds", default=None, help="only these image kinds, comma-separated (e.g. 'fluorescence')")
    ap.add_argument("--only", default=None, help="only these perturbations, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true", help="write the table to docs/robustness.md")
    ap.add_argument("--no-denoise-too", action="store_true",
                    help="also score each model with denoise=False (inference.denoise)")
    ap.add_argument("--enlarge-below", type=float, default=None,
                    help="sizing.ENLARGE_BELOW for this run (0: never enlarge, as before 2026-12-06)")
    ap.add_argument("--float32", action="store_true", help="no bf16 autocast even where the CPU computes it")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.float32:
        use_float32()
    if args.enlarge_below is not None:
        sizing.ENLARGE_BELOW = args.enlarge_below
    root = default_data_dir()
    if not (root / "train").is_dir():
        raise SystemExit(f"shared DSB data not found at {root}")
    val = [(im, lab) for im, lab, kind in load_sets(root, None)["DSB val"]
           if args.kinds is None or kind in args.kinds.split(",")]
    methods = {"classical Otsu + watershed": classical}
    for m in args.models:
        methods[m] = lambda im, m=m: segment(im, model=m).labels
        if args.no_denoise_too:
            methods[f"{m}, denoise off"] = lambda im, m=m: segment(im, model=m, denoise=False).labels
    names = args.only.split(",") if args.only else list(PERTURBATIONS)
    results = {}
    for p in names:
        rng = np.random.default_rng(args.seed)
        data = [PERTURBATIONS[p](im, lab, rng) for im, lab in val]
        print(f"{p} ({len(data)} images)", flush=True)
        results[p] = {m: score(fn, data, m) for m, fn in methods.items()}
    head = ["perturbation"] + [f"{m} DSB / AP@0.5" for m in methods]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p, row in results.items():
        lines.append("| " + " | ".join([p] + [f"{r['dsb_score']:.3f} / {r['ap50']:.3f}" for r in row.values()]) + " |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        report = REPORT.format(command=" ".join(["python experiments/robustness.py"] + sys.argv[1:]),
                               n=len(val), table=table)
        DOCS.write_text(kept_below(report, DOCS.read_text() if DOCS.exists() else ""))


if __name__ == "__main__":
    main()
