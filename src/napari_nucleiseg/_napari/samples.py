"""Sample data for File > Open Sample > napari-nucleiseg (generated or shipped; nothing is downloaded)."""

from __future__ import annotations

from ..synthetic import synthetic_nuclei


def _with_ground_truth(image, labels, name: str) -> list[tuple]:
    return [
        (image, {"name": name}, "image"),
        (labels, {"name": f"{name} ground truth", "opacity": 0.5, "visible": False}, "labels"),
    ]


def make_sparse_sample() -> list[tuple]:
    """Synthetic fluorescence field (256x256, 25 well-separated nuclei) and its ground truth.

    Returns
    -------
    list of (data, kwargs, layer_type)
        An Image layer ``synthetic fluorescence`` and a Labels layer ``synthetic fluorescence ground truth``.
    """
    image, labels = synthetic_nuclei((256, 256), n_nuclei=25, touching=0.0, seed=1)
    return _with_ground_truth(image, labels, "synthetic fluorescence")


def make_crowded_sample() -> list[tuple]:
    """Crowded synthetic field (384x384, ~120 nuclei, most touching) and its ground truth.

    Returns
    -------
    list of (data, kwargs, layer_type)
        An Image layer ``crowded field`` and a Labels layer ``crowded field ground truth``.
    """
    image, labels = synthetic_nuclei((384, 384), n_nuclei=120, radius=(6, 10), touching=0.6, seed=3)
    return _with_ground_truth(image, labels, "crowded field")


def make_brightfield_sample() -> list[tuple]:
    """Bright-field tissue: scikit-image's immunohistochemistry image (512x512 RGB, no ground truth).

    Returns
    -------
    list of (data, kwargs, layer_type)
        One RGB Image layer ``immunohistochemistry``; nuclei are dark (hematoxylin) on a bright background.
    """
    from skimage.data import immunohistochemistry

    return [(immunohistochemistry(), {"name": "immunohistochemistry", "rgb": True}, "image")]
