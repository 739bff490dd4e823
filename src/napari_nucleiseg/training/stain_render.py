"""Fluorescence training images rendered as stained tissue, to teach a stained-image model crowded
nuclei it has few annotated examples of.

A fluorescence nucleus stain and haematoxylin both mark chromatin, so the fluorescence signal is
used as the haematoxylin amount of each pixel; eosin fills the rest with a smooth random texture
(cytoplasm and stroma), more of it away from nuclei. The amounts are mixed with scikit-image's stain
colours (``rgb_from_hed``) into a bright-field colour image, which is then prepared exactly as a
real stained image (``preprocess.prepare_channels``). The labels are the fluorescence image's own.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..inference.preprocess import normalize, prepare_channels


def _smooth_noise(shape: tuple[int, int], rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian-smoothed noise scaled to [0, 1]."""
    from scipy import ndimage as ndi

    field = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


def render_stained(signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bright-field colour image (Y, X, 3; float32 in [0, 1]) of a fluorescence ``signal``
    (Y, X; nuclei bright, any range): haematoxylin where the signal is, eosin elsewhere."""
    from scipy import ndimage as ndi
    from skimage.color import rgb_from_hed

    s = np.clip(normalize(np.asarray(signal, np.float32)), 0.0, 1.0)
    haem = rng.uniform(0.6, 1.6) * s ** rng.uniform(0.7, 1.3)
    near = ndi.gaussian_filter(s, rng.uniform(2.0, 6.0))  # nuclei's surroundings hold less stroma
    eosin = rng.uniform(0.15, 0.6) * (0.3 + 0.7 * _smooth_noise(s.shape, rng, rng.uniform(2.0, 8.0)))
    eosin = eosin * (1.0 - 0.6 * np.clip(near / max(float(near.max()), 1e-6), 0.0, 1.0))
    haem = haem + rng.uniform(0.0, 0.08) * _smooth_noise(s.shape, rng, 1.5)  # a faint haematoxylin wash
    od = np.stack([haem, eosin, np.zeros_like(haem)], axis=-1) @ rgb_from_hed.astype(np.float32)
    rgb = np.exp(-od) + rng.normal(0.0, 0.01, od.shape).astype(np.float32)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def rendered_samples(samples, n: int, channels: int = 1, stain_signal: str = "darkest", seed: int = 0):
    """``n`` of the fluorescence ``samples`` (``dataset.Sample``, a seeded choice), each rendered
    as stained tissue (``render_stained``) and prepared as a stained image; kind ``"stained"``."""
    from .dataset import Sample

    fluo = [s for s in samples if s.kind == "fluorescence"]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(fluo), size=min(n, len(fluo)), replace=False) if fluo else []
    out = []
    for i in sorted(int(k) for k in chosen):
        s = fluo[i]
        plane = s.image if s.image.ndim == 2 else s.image[0]
        rgb = render_stained(plane, np.random.default_rng(zlib.crc32(s.name.encode())))
        out.append(Sample(prepare_channels(rgb, channels=channels, kind="stained", stain_signal=stain_signal),
                          s.labels, f"{s.name} (rendered stained)", "stained"))
    return out
