"""Instances from foreground and border maps: threshold, fill holes, seeds, marker-controlled watershed."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential, watershed


def remove_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Set labels with fewer than ``min_size`` pixels to 0."""
    if min_size <= 1 or labels.max() == 0:
        return labels
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False
    if small.any():
        labels = labels.copy()
        labels[small[labels]] = 0
    return labels


def seed_outlines(markers: np.ndarray) -> np.ndarray:
    """Markers reduced to their outer pixels: the same watershed, 2-3x faster on large images.

    A seed's inner pixels can only be flooded from its own outline, so the labels do not
    change; the watershed's priority queue starts with the outlines instead of every seed
    pixel, which made it slower than linear in the image size.
    """
    inside = ndi.binary_erosion(markers > 0)
    return np.where(inside, 0, markers)


def instances_from_maps(
    foreground: np.ndarray,
    border: np.ndarray,
    threshold: float = 0.5,
    border_threshold: float = 0.5,
    min_size: int = 8,
    seed_min_size: int = 3,
    min_mean_foreground: float = 0.0,
) -> np.ndarray:
    """Split the foreground into nuclei with a watershed seeded by foreground-minus-border.

    Parameters
    ----------
    foreground, border : numpy.ndarray
        Probabilities in [0, 1], shape ``(Y, X)``.
    threshold : float
        Foreground probability above which a pixel is nucleus.
    border_threshold : float
        Border probability below which a nucleus pixel may seed an instance.
    min_size : int
        Instances smaller than this (pixels) are dropped.
    seed_min_size : int
        Seeds smaller than this are ignored (noise between touching nuclei).
    min_mean_foreground : float
        Nuclei whose mean foreground probability is lower are dropped (unsure detections,
        mostly false positives).

    Returns
    -------
    numpy.ndarray
        int32 labels, 0 = background, 1..N sequential.
    """
    mask = ndi.binary_fill_holes(foreground > threshold)
    seeds = mask & (border < border_threshold)
    markers, _ = ndi.label(seeds)
    markers = remove_small(markers, seed_min_size)
    elevation = border.astype(np.float32) - foreground.astype(np.float32)
    labels = watershed(elevation, seed_outlines(markers), mask=mask)
    # foreground blobs that got no seed (tiny or all-border nuclei) become nuclei of their own
    orphans, n_orphans = ndi.label(mask & (labels == 0))
    if n_orphans:
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    labels = remove_small(labels, min_size)
    if min_mean_foreground > 0 and labels.max():
        sums = np.bincount(labels.ravel(), weights=foreground.ravel())
        counts = np.bincount(labels.ravel())
        unsure = sums < min_mean_foreground * counts  # ids without pixels: 0 < 0, kept as nothing
        unsure[0] = False
        labels = np.where(unsure[labels], 0, labels)
    return relabel_sequential(labels.astype(np.int32))[0]


def classical_instances(image: np.ndarray, min_size: int = 8, footprint: int = 7) -> np.ndarray:
    """Baseline without a model: Otsu threshold, fill holes, distance-transform peaks, watershed.

    Parameters
    ----------
    image : numpy.ndarray
        Prepared grey image (nuclei bright), see ``preprocess.prepare``.
    footprint : int
        Minimum distance between seeds (pixels).
    """
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu

    smooth = gaussian(image, 1.0)
    if smooth.max() <= smooth.min():
        return np.zeros(image.shape, np.int32)
    mask = ndi.binary_fill_holes(smooth > threshold_otsu(smooth))
    dist = ndi.distance_transform_edt(mask)
    comps, _ = ndi.label(mask)
    peaks = peak_local_max(dist, min_distance=footprint // 2 + 1, labels=comps, exclude_border=False)
    markers = np.zeros(image.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-dist, markers, mask=mask)
    labels = remove_small(labels, min_size)
    return relabel_sequential(labels.astype(np.int32))[0]
