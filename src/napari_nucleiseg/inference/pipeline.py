"""``segment()``: the one function every entry point (widgets, CLI, batch, benchmarks) calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..memory import check_fits
from ..options import SegmentOptions, parse_diameter
from .checks import check_image, checked_scale, nucleus_channel, single_channel_dropped, within_float32
from .denoise import measured_smoothing, smooth, smoothed
from .detect import detect, instance_maps, sized_detection
from .illumination import Illumination
from .kinds import illumination_of, image_kind
from .measure import channel_means, measure
from .predict import predict_maps, uncertainty_map
from .preprocess import to_grey
from .sizing import AUTO, SHARPER_KINDS, coarse_diameter, sized_prediction, texture_look, trusted_look

#: The stages ``segment`` announces through its ``stage`` callback.
STAGES = {"load": "loading the model", "size": "first pass (measuring nucleus size)",
          "predict": "predicting", "shrunk": "second pass (rescaled image)", "measure": "measuring nuclei"}


@dataclass
class Segmentation:
    """Result of ``segment``.

    Attributes
    ----------
    labels : numpy.ndarray
        int32 ``(Y, X)`` instance labels, 0 = background.
    probability : numpy.ndarray
        float32 ``(Y, X)`` nucleus foreground probability (an instance model: the union, i.e.
        pixelwise maximum, of the soft masks of its detections).
    uncertainty : numpy.ndarray
        float32 ``(Y, X)`` per-pixel uncertainty in [0, 1] (``predict.uncertainty_map`` of the
        probability: its binary entropy, plus the TTA spread of map models).
    table : pandas.DataFrame
        One row per nucleus (label, area, centroid, mean intensity, confidence, ...); the
        confidence of an instance model's nucleus is its detection score.
    border : numpy.ndarray
        float32 ``(Y, X)`` nucleus-border probability (zeros for an instance model, and for a
        model without a border output: its nuclei are split at distance-transform peaks,
        ``postprocess.instances_from_maps``).
    model : str
        Name of the zoo model whose weights ran (the requested one, or its specialist for
        this kind of image).
    device : str
        Where it ran, e.g. ``"CPU (2 threads, bf16)"``.
    settings : dict
        Every option that produced this result (for reproducibility).
    """

    labels: np.ndarray
    probability: np.ndarray
    uncertainty: np.ndarray
    table: pd.DataFrame
    border: np.ndarray
    model: str
    device: str
    settings: dict = field(default_factory=dict)

    @property
    def zoom(self) -> float:
        """Scale the image was segmented at (the smallest over a stack's planes); < 1 when its
        nuclei were larger than the model's training size (``sizing``)."""
        return float(np.min(self.settings.get("zoom", 1.0)))

    @property
    def evened(self) -> float:
        """How far uneven light was evened out before the network saw the image (0: not at all,
        1: fully; the largest over a stack's planes; ``illumination``)."""
        return float(np.max(self.settings.get("evened", 0.0)))

    @property
    def smoothing(self) -> float:
        """Sigma (pixels) the network's input was smoothed with because the image was noisy (the
        largest over a stack's planes; 0: not smoothed; ``denoise``)."""
        return float(np.max(self.settings.get("smoothing", 0.0)))


def segment(
    image: np.ndarray,
    options: SegmentOptions | None = None,
    *,
    scale: tuple[float, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    stage: Callable[[str], None] | None = None,
    **changes,
) -> Segmentation:
    """Find every nucleus in a 2D image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(Y, X)`` grey or ``(Y, X, 3|4)`` RGB(A), any numeric dtype; ``(Y, X, C)`` of any ``C``
        with the ``channel`` option (the nucleus channel alone is segmented and measured).
    options : SegmentOptions, optional
        Model, device, post-processing, nucleus size and tiling (``options.SegmentOptions``;
        defaults: the shipped default model, sizes measured). A model whose card names
        specialists for an image kind (e.g. stained tissue) hands such images to them
        (``ModelEntry.for_kind``); the post-processing stays the named model's, with its card's
        settings for the image's kind (``ModelEntry.postprocess(kind)``).
    scale : (float, float), optional
        Pixel size ``(y, x)``, used for ``area_physical`` in the table (of a napari stack's
        ``(z, y, x)`` scale, the last two); ``errors.OptionError`` for one that is not two sizes above 0.
    progress : callable, optional
        ``progress(done, total)`` per tile; ``done / total`` never falls (while a shrunk
        second pass may follow, the first pass counts against twice its tiles) and ends at 1.
    cancel : callable, optional
        Returns True to stop; ``errors.Cancelled`` is then raised.
    stage : callable, optional
        ``stage(name)`` when a stage starts: ``STAGES`` values (loading the model, the passes,
        measuring).
    **changes
        Any field of ``SegmentOptions`` (``model="unet16"``, ``tta=True``, ``diameter=30``...),
        applied over ``options``.

    Returns
    -------
    Segmentation

    Raises
    ------
    errors.OptionError
        For an option out of range (checked before any work).
    errors.InvalidImageError
        For an image that cannot be segmented (``check_image``), or that cannot fit in memory
        (``errors.ImageTooLargeError``). Float images beyond float32's range are rescaled first
        (``checks.within_float32``; ``settings["intensity_scale"]`` then says by how much).
    """
    from .. import zoo
    from ..device import describe

    opts = SegmentOptions.build(options, **changes)
    scale = checked_scale(scale)
    channels = image if opts.channel is not None and np.ndim(image) == 3 else None  # each measured too
    image = nucleus_channel(single_channel_dropped(image) if opts.channel is None else image, opts.channel)
    check_image(image)
    check_fits(np.shape(image), np.asarray(image).dtype, loaded=True)
    image, intensity_scale = within_float32(image)
    diameter = parse_diameter(opts.diameter)
    entry = zoo.get_entry(opts.model)
    kind = image_kind(image, opts.invert)
    say = stage or (lambda _name: None)
    say(STAGES["load"])
    net, used, dev = zoo.load_model(entry.for_kind(kind), opts.device)
    post = opts.postprocess(entry.postprocess(kind), entry.postprocess())
    light = illumination_of(image) if kind != "fluorescence" and opts.even_light else Illumination()
    x = used.prepare(image, kind, light)
    target = entry.target_diameter()
    count = _TileCount(net, dev, opts, progress, cancel, say, second_pass=diameter == AUTO and bool(target))
    scores = None
    if used.outputs_instances:
        dets, zoom = sized_detection(count.detect, x, post["threshold"], target, diameter)
        maps, labels, scores = instance_maps(dets, x.shape[-2:], post)
    else:
        # nuclei many times the training size are measured on a coarse look, not a first pass
        look = coarse_diameter(count.glance, x, post, target) if diameter == AUTO and entry.coarse_look() else None
        big = trusted_look(look, target)
        count.second_pass = count.second_pass and not big
        maps, labels, zoom = sized_prediction(count.predict, x, post, target, look if big else diameter,
                                              texture_look(look, kind), sharpen=kind in SHARPER_KINDS)
    say(STAGES["measure"])
    unc = uncertainty_map(maps["foreground"], maps["variance"])
    table = measure(labels, to_grey(image), maps["foreground"], unc, scale=scale)
    if channels is not None:
        table = channel_means(table, labels, np.asarray(channels))
    if scores is not None:  # a detector's confidence in a nucleus is its detection score
        table["confidence"] = scores[table["label"].to_numpy().astype(np.int64)]
    count.finish()
    settings = {"model": entry.name, "weights": used.name, "image_kind": kind,
                "tta": opts.tta and not used.outputs_instances,  # a detector runs without TTA
                "denoise": opts.denoise, "noise": count.noise, "smoothing": count.smoothing,
                "even_light": opts.even_light, "light_ratio": round(light.ratio, 4),
                "evened": round(light.strength, 4),
                "channel": opts.channel, "invert": opts.invert, "tile": opts.tile, "overlap": opts.overlap,
                "diameter": diameter,
                "zoom": round(zoom, 4), **post}
    if intensity_scale != 1.0:
        settings["intensity_scale"] = intensity_scale  # the table's intensities are divided by it
    border = maps.get("border", np.zeros_like(maps["foreground"]))
    return Segmentation(labels, maps["foreground"], unc, table, border, used.name,
                        describe(dev), settings)


class _TileCount:
    """``predict(image) -> maps`` whose tile progress runs on across the passes of one image, each
    pass's input smoothed when it is noisy (``denoise``, unless ``opts.denoise`` is off).

    The fraction ``done / total`` never falls: while a rescaled second pass may follow
    (``second_pass``), the first pass counts against twice its tiles, and a second pass fills the
    half it reserved, whatever its own number of tiles (an enlarged image has more).
    """

    def __init__(self, net, dev, opts: SegmentOptions, progress, cancel, say, second_pass: bool):
        self.net, self.dev, self.opts = net, dev, opts
        self.progress, self.cancel, self.say = progress, cancel, say
        self.second_pass = second_pass
        self.passes = 0
        self.earlier = 0  # tiles of finished passes
        self.last = (0, 0)
        self._n = 0  # tiles of the pass running now
        self.noise = self.smoothing = 0.0  # of the last pass (``denoise.measured_smoothing``)

    def _report(self, done: int, total: int) -> None:
        self.last = (done, total)
        if self.progress is not None:
            self.progress(done, total)

    def predict(self, im: np.ndarray) -> dict:
        """Maps of a map model (``predict.predict_maps``)."""
        return self._pass(im, lambda x, tiles: predict_maps(
            self.net, x, self.dev, tile=self.opts.tile, overlap=self.opts.overlap, tta=self.opts.tta,
            progress=tiles, cancel=self.cancel))

    def glance(self, im: np.ndarray) -> dict:
        """Maps of a small look at the image (``sizing.coarse_diameter``): smoothed as a pass is,
        cancellable, its few tiles not counted."""
        return predict_maps(self.net, smoothed(im, self.opts.denoise), self.dev, tile=self.opts.tile,
                            overlap=self.opts.overlap, cancel=self.cancel)

    def detect(self, im: np.ndarray):
        """Detections of an instance model (``detect.detect``; no TTA)."""
        return self._pass(im, lambda x, tiles: detect(self.net, x, self.dev, tile=self.opts.tile,
                                                      overlap=self.opts.overlap, progress=tiles, cancel=self.cancel))

    def _pass(self, im: np.ndarray, run):
        first = self.passes == 0
        self.passes += 1
        self.say(STAGES["size" if first and self.second_pass else "predict" if first else "shrunk"])
        reserve = first and self.second_pass
        span = self.earlier  # the first pass's tiles: a second pass fills as many

        def tiles(done, total):
            self._n = total
            if first:
                self._report(done, total * (2 if reserve else 1))
            else:
                self._report(span + done * span // max(total, 1), 2 * span)

        # noise is judged at the scale the network sees: a shrunk image is calmer, an enlarged one smoother
        self.noise, self.smoothing = measured_smoothing(im, self.opts.denoise)
        out = run(smooth(im, self.smoothing), tiles)
        self.earlier = self._n if first else 2 * span
        return out

    def finish(self) -> None:
        """Report the end (all tiles done) when the last report was short of it (no second pass)."""
        if self.earlier and self.last != (self.earlier, self.earlier):
            self._report(self.earlier, self.earlier)
