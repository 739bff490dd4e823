"""Replay against forgetting: synthetic fields and the user's other images, labelled by the base model."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch


@functools.lru_cache(maxsize=2)
def replay_samples(n: int = 8, size: int = 256, seed: int = 1234, channels: int = 1) -> tuple:
    """Built-in synthetic fluorescence fields with exact labels, mixed into fine-tuning batches.

    They remind the model of what nuclei look like in general while it adapts to a few
    images of one kind, so it does not forget other image types (no data is downloaded).

    Parameters
    ----------
    n : int
        Number of fields; sizes, densities, touching fraction and noise vary between them.
    size : int
        Edge of each field in pixels.
    seed : int

    Returns
    -------
    tuple of dataset.Sample
        Cached: the same fields each call (do not modify them).
    """
    from ...inference.preprocess import prepare_channels
    from ...synthetic import synthetic_nuclei
    from ..dataset import Sample

    rng = np.random.default_rng(seed)
    radii = [(5, 9), (7, 12), (10, 18), (6, 14)]
    out = []
    for i in range(n):
        r = radii[i % len(radii)]
        density = rng.uniform(0.05, 0.25)  # fraction of the field covered by nuclei
        count = max(4, int(density * size * size / (np.pi * np.mean(r) ** 2)))
        img, lab = synthetic_nuclei((size, size), n_nuclei=count, radius=r, touching=rng.uniform(0.1, 0.3),
                                    noise=rng.uniform(0.02, 0.08), seed=int(rng.integers(2**31)))
        out.append(Sample(prepare_channels(img, invert=False, channels=channels), lab, f"synthetic {i + 1}"))
    return tuple(out)


def teacher_labels(model, samples, device, post) -> list:
    """The same images labelled by ``model`` (instances after post-processing); empty results dropped."""
    from ...evaluation.evaluate import predict_instances
    from ..dataset import Sample

    model.to(device).eval()
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    out = []
    for s in samples:
        _, lab = predict_instances(model, s.image, device, post)
        if lab.max() > 0:
            out.append(Sample(s.image, lab.astype(np.int32), s.name, s.kind))
    return out


def mix_replay(samples: list, model, device, post, replay: float, replay_labels: str,
               replay_images: Sequence[np.ndarray] | None = None, invert: bool | None = None,
               channels: int = 1, stain_signal: str = "darkest") -> list:
    """The training list: the user's samples plus replay samples, about ``replay`` of each batch.

    Parameters
    ----------
    samples : list of dataset.Sample
        The user's corrected samples.
    model : torch.nn.Module
        The model fine-tuning starts from: it labels the replay images (``teacher_labels``).
    device : torch.device
    post : dict
        Post-processing settings for its labels.
    replay : float
        Fraction of each batch from replay samples, in (0, 1).
    replay_labels : {"base model", "truth"}
        Targets for the synthetic fields (``replay_samples``): ``model``'s segmentation or their exact labels.
    replay_images : sequence of numpy.ndarray, optional
        The user's other images, always labelled by ``model``.
    invert : bool, optional
        Passed to ``preprocess.prepare_channels`` for ``replay_images``.
    channels : int
        The model's input channels.
    stain_signal : str
        The nucleus signal of stained images the model takes (as for the user's pairs, ``pairs.replay_input``).

    Returns
    -------
    list of dataset.Sample
    """
    from ..dataset import Sample
    from .pairs import replay_input

    extra = list(replay_samples(channels=channels))
    if replay_labels == "base model":
        extra = teacher_labels(model, extra, device, post)
    if replay_images:
        own = []
        for i, im in enumerate(replay_images):
            x, kind = replay_input(im, f"replay image {i + 1}", invert, channels, stain_signal)
            own.append(Sample(x, np.zeros(x.shape[-2:], np.int32), f"replay image {i + 1}", kind))
        extra += teacher_labels(model, own, device, post)
    # the augmenter draws list entries uniformly: repeat the user's samples to get the mix asked for
    reps = max(1, round(len(extra) * (1 - replay) / (replay * len(samples))))
    return samples * reps + extra
