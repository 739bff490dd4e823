"""Nucleus-size normalisation: predict nuclei at the size the model saw in training.

Most DSB training nuclei are 10-25 pixels across; a model trained on them merges and misses
nuclei that are several times larger (high-magnification images), and splits or misses the
tiny nuclei of low-magnification images. ``sized_prediction`` measures the nuclei of a first
pass (or takes a diameter from the user) and, when they are larger than the model's target
diameter, predicts again on a shrunken copy of the image; when they are much smaller
(``ENLARGE_BELOW``), on an enlarged copy. The maps are scaled back to the image's own size, so
post-processing and measurements stay at full resolution. For fluorescence images shrunk to
``REFINE_MIN_ZOOM`` or more, the first pass is not thrown away: the nuclei found on the shrunk pass are
redrawn inside the mean of both foregrounds (``sharper_foreground``), whose edges the full-size pass
sees at full resolution.

Nuclei many times the training size (a 60-100x objective) defeat that first pass: at full size the
network finds their chromatin texture, hundreds of small "nuclei", and measures those.
``coarse_diameter`` looks at a copy shrunk to a quarter first, where such nuclei are whole; a look
that finds nuclei of at least ``COARSE_TRUSTED`` times the target is trusted and the first pass is
skipped. A look of ``COARSE_TEXTURE`` times the target or more still overrules a first pass that
measures under half of it (``saw_texture``): that pass took the nuclei's texture for nuclei
(``docs/sizing.md``). A look that finds fewer than ``COARSE_MIN_NUCLEI`` nuclei does neither.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from skimage.transform import resize

from ..options import parse_diameter
from .postprocess import fill_holes, instances, redraw_outlines

AUTO = "auto"
# rescaling by less than this changes results by less than the noise, and costs a second pass
MIN_CHANGE = 0.9
#: the shortest side an image is shrunk to
MIN_SIDE = 16
#: nuclei below this share of the target diameter are predicted on an enlarged copy (docs/training_log.md)
ENLARGE_BELOW = 0.45
#: enlarging is capped at this factor, and at ``MAX_ENLARGED_PIXELS`` pixels (memory stays bounded)
MAX_ENLARGE = 2.0
MAX_ENLARGED_PIXELS = 16_000_000
#: the coarse look (``coarse_diameter``) sees means of COARSE x COARSE pixels, of images whose
#: shorter side is at least COARSE_MIN_SIDE pixels
COARSE = 4
COARSE_MIN_SIDE = 512
#: a coarse look is trusted when its nuclei are at least this many times the target diameter
COARSE_TRUSTED = 3.5
#: a look of at least this many times the target overrules a first pass that measures under half of it
COARSE_TEXTURE = 2.5
#: a look that finds fewer nuclei than this gives no size: a few blobs are not a median (a dense field
#: with a saturated disk of debris, seen at a quarter size, is two blobs; ``docs/sizing.md``)
COARSE_MIN_NUCLEI = 5
#: an image shrunk by at least this zoom (and below 1) gets its nuclei's outlines from the full-size
#: first pass too (``sharper_foreground``); a smaller zoom is for nuclei whose first pass may have seen
#: their texture only
REFINE_MIN_ZOOM = 0.3
#: the image kinds whose shrunk images get those outlines: on stained tissue they lost on the MoNuSeg
#: validation tiles, and bright-field had one tuning image to tell by (docs/sizing.md)
SHARPER_KINDS = frozenset({"fluorescence"})


def pooled_diameter(label_images, min_nuclei: int = 1) -> float | None:
    """Median equivalent-circle diameter (pixels) over all nuclei of ``label_images``; None if
    there are fewer than ``min_nuclei``.

    For the training data this is the nucleus size a model saw most: its card's
    ``sizing.target_diameter``.
    """
    areas = np.concatenate([np.bincount(np.asarray(lab).ravel())[1:] for lab in label_images] or [[]])
    areas = areas[areas > 0]
    return float(np.sqrt(4.0 * np.median(areas) / np.pi)) if len(areas) >= max(min_nuclei, 1) else None


def median_diameter(labels: np.ndarray) -> float | None:
    """Median equivalent-circle diameter (pixels) of the nuclei in ``labels``; None if empty."""
    return pooled_diameter([labels])


def zoom_for(diameter: float | None, target: float | None) -> float:
    """Factor (<= 1) that brings nuclei of ``diameter`` pixels to ``target``; 1.0 for no change.

    Only shrinks: nuclei smaller than the target are left alone (enlarging did not help on
    the DSB data), and so are factors above ``MIN_CHANGE``.
    """
    if not diameter or not target or diameter <= 0:
        return 1.0
    zoom = target / diameter
    return zoom if zoom < MIN_CHANGE else 1.0


def prediction_zoom(diameter: float | None, target: float | None, shape: tuple[int, ...]) -> float:
    """Factor an image of ``shape`` is predicted at: ``zoom_for`` (shrinking), or above 1 when its
    nuclei are smaller than ``ENLARGE_BELOW`` of the target: enlarged towards the target by at
    most ``MAX_ENLARGE`` and to at most ``MAX_ENLARGED_PIXELS`` pixels (1.0 when those caps leave
    a change below ``MIN_CHANGE``)."""
    zoom = zoom_for(diameter, target)
    if zoom != 1.0:
        return within_shape(zoom, shape)
    if not diameter or not target or diameter >= ENLARGE_BELOW * target:
        return zoom
    pixels = float(shape[-2]) * float(shape[-1])
    zoom = min(target / diameter, MAX_ENLARGE, (MAX_ENLARGED_PIXELS / max(pixels, 1.0)) ** 0.5)
    return zoom if zoom > 1.0 / MIN_CHANGE else 1.0


def within_shape(zoom: float, shape: tuple[int, ...]) -> float:
    """A shrinking ``zoom`` raised so that the shorter side of ``(..., Y, X)`` stays at 16 pixels
    or more, the same factor on both axes (1.0 when that leaves a change below ``MIN_CHANGE``)."""
    floor = MIN_SIDE / max(min(shape[-2:]), 1)
    if zoom >= floor:
        return zoom
    return floor if floor < MIN_CHANGE else 1.0


def shrunk_shape(shape: tuple[int, ...], zoom: float) -> tuple[int, int]:
    """``(Y, X)`` of an image shrunk by ``zoom`` (never below 16 pixels: ``within_shape``)."""
    return tuple(max(MIN_SIDE, round(n * zoom)) for n in shape[:2])


def shrink(image: np.ndarray, zoom: float) -> np.ndarray:
    """A prepared float image ``(Y, X)`` or ``(C, Y, X)`` rescaled by ``zoom`` (bilinear, anti-aliased
    when shrinking), float32."""
    if image.ndim == 3:
        return np.stack([shrink(plane, zoom) for plane in image])
    return resize(image, shrunk_shape(image.shape, zoom), order=1, preserve_range=True,
                  anti_aliasing=True).astype(np.float32)


def shrink_labels(labels: np.ndarray, zoom: float) -> np.ndarray:
    """Instance labels shrunk by ``zoom`` (nearest neighbour), int32."""
    return resize(labels, shrunk_shape(labels.shape, zoom), order=0, preserve_range=True,
                  anti_aliasing=False).astype(np.int32)


def resize_maps(maps: dict[str, np.ndarray], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Every map of ``maps`` resized (bilinear) to ``shape``, float32 (all-zero maps stay zeros)."""
    return {k: resize(v, shape, order=1, preserve_range=True).astype(np.float32) if v.any()
            else np.zeros(shape, np.float32) for k, v in maps.items()}


def coarse_view(image: np.ndarray) -> np.ndarray | None:
    """``image`` (float32 ``(Y, X)`` or ``(C, Y, X)``) seen coarsely: means of ``COARSE`` x
    ``COARSE`` pixels; None when its shorter side is below ``COARSE_MIN_SIDE`` (not looked at)."""
    if min(image.shape[-2:]) < COARSE_MIN_SIDE:
        return None
    h, w = (n // COARSE * COARSE for n in image.shape[-2:])
    blocks = image[..., :h, :w].reshape(image.shape[:-2] + (h // COARSE, COARSE, w // COARSE, COARSE))
    return blocks.mean(axis=(-3, -1), dtype=np.float32)


def pooled_look(looks) -> float | None:
    """Diameter (full-size pixels) of the nuclei in the instance labels ``looks`` of coarse views,
    pooled; None when they hold fewer than ``COARSE_MIN_NUCLEI``."""
    diameter = pooled_diameter(looks, COARSE_MIN_NUCLEI)
    return None if diameter is None else diameter * COARSE


def trusted_look(look: float | None, target: float | None) -> bool:
    """A look's diameter ``look`` sizes the image with no first pass: nuclei at least
    ``COARSE_TRUSTED`` times ``target``."""
    return bool(look and target and look >= COARSE_TRUSTED * target)


def saw_texture(first: float | None, look: float | None, target: float | None) -> bool:
    """The full-size first pass (median diameter ``first``) found the texture of nuclei that the
    coarse look saw whole: it measured under half the look's diameter, and the look found nuclei
    at least ``COARSE_TEXTURE`` times ``target``.

    On the clean images of the DSB, MoNuSeg and DeepLIIF sets the two measures agree within 4 %
    wherever the look reaches ``COARSE_TEXTURE`` (``docs/sizing.md``), so this overrules only a
    first pass that failed. Smaller looks can be clumps of small nuclei (up to 2.3 times the target
    on fluorescence images), and so can stained tissue's (``texture_look``).
    """
    return bool(look and target and look >= COARSE_TEXTURE * target and (first is None or first < look / 2))


def texture_look(look: float | None, kind: str) -> float | None:
    """``look`` where it may overrule a first pass (``saw_texture``): not on stained tissue, whose
    crowded nuclei a coarse look sees in clumps (MoNuSeg tiles: 2.0-2.1 times the target, where the
    first pass measures 0.75-0.8)."""
    return None if kind == "stained" else look


def coarse_diameter(predict: Callable[[np.ndarray], dict[str, np.ndarray]], image: np.ndarray,
                    post: dict, target: float | None) -> float | None:
    """Median diameter of the nuclei (pixels of ``image``) seen on a copy shrunk ``COARSE`` times
    (``coarse_view``).

    It reads nuclei of 2.5 times the target or more within a few per cent; smaller ones it sees
    in clumps. ``trusted_look`` says when it sizes the image alone, ``saw_texture`` when it
    overrules the first pass.

    Parameters
    ----------
    predict : callable
        ``predict(prepared_image) -> maps``.
    image : numpy.ndarray
        float32 ``(Y, X)`` or ``(C, Y, X)`` prepared image; none is looked at whose shorter side
        is below ``COARSE_MIN_SIDE``.
    post : dict
        Post-processing settings (``postprocess.instances_from_maps``).
    target : float or None
        The model's target diameter (None: no look).

    Returns
    -------
    float or None
        None when the image is not looked at or the look finds fewer than ``COARSE_MIN_NUCLEI`` nuclei.
    """
    view = coarse_view(image) if target else None
    return None if view is None else pooled_look([instances(predict(view), post)])


def sized_prediction(
    predict: Callable[[np.ndarray], dict[str, np.ndarray]],
    image: np.ndarray,
    post: dict,
    target: float | None,
    diameter: float | str | None = AUTO,
    look: float | None = None,
    sharpen: bool = False,
) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """Maps and labels of ``image``, predicted at the scale that suits its nuclei.

    Parameters
    ----------
    predict : callable
        ``predict(prepared_image) -> maps`` (``predict.predict_maps`` with model and device bound).
    image : numpy.ndarray
        float32 ``(Y, X)`` or ``(C, Y, X)`` prepared image.
    post : dict
        Post-processing settings (``postprocess.instances_from_maps``).
    target : float or None
        Nucleus diameter (pixels) the model segments best (its card's ``target_diameter``);
        None never rescales. Larger nuclei are shrunk to it, much smaller ones enlarged
        (``prediction_zoom``).
    diameter : float, "auto" or None
        Typical nucleus diameter in ``image`` (pixels); ``"auto"`` measures it on a first
        pass; None never rescales (``parse_diameter`` spellings are accepted).
    look : float, optional
        The coarse look's diameter (``coarse_diameter``, through ``texture_look``): with ``"auto"``,
        it replaces a first pass that saw texture (``saw_texture``).
    sharpen : bool
        A shrunk image's nuclei get their outlines from the full-size first pass too (``sharper_foreground``;
        ``segment()`` asks it for the ``SHARPER_KINDS``).

    Returns
    -------
    maps : dict
        Maps at the full size of ``image`` (with ``sharpen``, a refined image's foreground is the mean
        its outlines were drawn from).
    labels : numpy.ndarray
        int32 instance labels at the full size of ``image``.
    zoom : float
        The factor the image was predicted at (1.0: not rescaled; above 1: enlarged).
    """
    diameter = parse_diameter(diameter)
    maps = labels = None
    measured = False  # the first pass sized the image
    if diameter == AUTO:
        maps = predict(image)
        labels = instances(maps, post)
        diameter = median_diameter(labels) if target else None
        measured = not saw_texture(diameter, look, target)
        if not measured:
            diameter = look
    zoom = prediction_zoom(diameter, target, image.shape)
    if zoom != 1.0:
        refine = sharpen and measured and REFINE_MIN_ZOOM <= zoom < 1.0
        # a copy: the map is a view of the pass's whole output, which would stay alive with it
        first = maps["foreground"].copy() if refine else None
        maps = labels = None  # the first pass's, freed before the (possibly larger) second pass
        maps = resize_maps(predict(shrink(image, zoom)), image.shape[-2:])
        sharper = None if first is None else sharper_foreground(first, maps["foreground"])
        first = None
        labels = refined_labels(maps, post, sharper)
        if sharper is not None:
            maps["foreground"], sharper = sharper, None  # the probability the outlines are drawn from
    elif maps is None:
        maps = predict(image)
    if labels is None:
        labels = instances(maps, post)
    return maps, labels, zoom


def refined_labels(maps: dict[str, np.ndarray], post: dict, sharper: np.ndarray | None = None) -> np.ndarray:
    """The nuclei of ``maps`` (``instances``), each redrawn inside ``sharper`` (``sharper_foreground``)
    when it is given: what ``sized_prediction`` labels a shrunk image with."""
    labels = instances(maps, post)
    if sharper is None:
        return labels
    elevation = maps["border"] - maps["foreground"] if "border" in maps else -maps["foreground"]
    return redraw_outlines(labels, fill_holes(sharper > post["threshold"]), elevation)


def sharper_foreground(first: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """The mean of a shrunk pass's ``foreground`` (scaled back up) and the full-size first pass's
    (``first``, overwritten with it): what a shrunk image's nuclei are drawn from, and its probability.

    The shrunk pass finds the nuclei; the full-size pass sees their edges at full resolution. The
    nuclei keep their number and identity (``postprocess.redraw_outlines``; docs/sizing.md).
    """
    mean = np.add(first, foreground, out=first)
    mean *= 0.5
    return mean
