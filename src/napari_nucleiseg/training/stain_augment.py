"""Stain augmentation of colour images in optical density (HED jitter, as computational pathology does).

A bright-field image is light absorbed by stains: its optical density ``-log(rgb)`` is a sum of
one colour vector per stain (haematoxylin, eosin, DAB; scikit-image's ``rgb_from_hed``) times
that stain's amount at each pixel. Scaling and shifting each amount on its own, then mixing the
colours back, gives the same tissue as another lab's staining (more or less eosin, paler or darker
haematoxylin) would. The model input is made from the jittered colour image exactly as at
inference (``preprocess.prepare_channels``, whole-image normalisation), so each stained training
image carries a few such variants (``Sample.variants``) and the augmenter draws among them.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..inference.preprocess import prepare_channels

#: half-width of the log-scale range of each stain's amount (haematoxylin, eosin, DAB)
SCALE = (0.3, 0.5, 0.5)
#: half-width of the range of each stain's shift, in optical density
SHIFT = 0.03


def hed_jitter(rgb: np.ndarray, rng: np.random.Generator, scale=SCALE, shift: float = SHIFT) -> np.ndarray:
    """``rgb`` (Y, X, 3; any range, white near its maximum) with each stain's amount scaled and
    shifted at random; float32 in [0, 1].

    With ``scale`` and ``shift`` zero the image comes back unchanged (up to its scaling to [0, 1]).
    """
    from skimage.color import hed_from_rgb, rgb_from_hed

    rgb = np.asarray(rgb, np.float32)[..., :3]
    top = max(float(rgb.max()), 1e-6)
    od = -np.log(np.clip(rgb / top, 1e-4, 1.0))
    amounts = od @ hed_from_rgb.astype(np.float32)
    factor = np.exp(rng.uniform(-1.0, 1.0, 3) * np.asarray(scale, np.float64)).astype(np.float32)
    offset = rng.uniform(-shift, shift, 3).astype(np.float32)
    od = (amounts * factor + offset) @ rgb_from_hed.astype(np.float32)
    return np.exp(-od).clip(0.0, 1.0).astype(np.float32)


def stain_variants(image: np.ndarray, name: str, n: int, channels: int = 1,
                   stain_signal: str = "darkest") -> tuple[np.ndarray, ...]:
    """``n`` model inputs of a stained colour ``image``, each from its own ``hed_jitter``.

    The jitter is seeded from ``name`` so a training run can be repeated.
    """
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return tuple(prepare_channels(hed_jitter(image, rng), channels=channels, kind="stained",
                                  stain_signal=stain_signal) for _ in range(n))
