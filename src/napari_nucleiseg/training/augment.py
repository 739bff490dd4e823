"""Batched training augmentation in torch: crops, scale, rotation, elastic warp, intensity.

Geometry is one ``grid_sample`` per sample (image bilinear, labels nearest), so
flips, any rotation, scale and a smooth elastic displacement cost one resampling.
Targets are derived from the warped labels afterwards, so borders stay crisp.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _crop(arr: np.ndarray, cy: int, cx: int, size: int) -> np.ndarray:
    """Square crop of the last two axes centred at (cy, cx), zero-padded where it leaves the array."""
    h, w = arr.shape[-2:]
    half = size // 2
    out = np.zeros(arr.shape[:-2] + (size, size), arr.dtype)
    y0, x0 = cy - half, cx - half
    sy0, sx0 = max(y0, 0), max(x0, 0)
    sy1, sx1 = min(y0 + size, h), min(x0 + size, w)
    out[..., sy0 - y0: sy1 - y0, sx0 - x0: sx1 - x0] = arr[..., sy0:sy1, sx0:sx1]
    return out


def distance_from_labels(labels: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) float labels -> (N, 1, H, W) distance to the nucleus outline, 1 at each
    nucleus' deepest pixel (its own maximum) and 0 outside nuclei.

    The outline of a nucleus includes where it touches another, so the map dips between
    touching nuclei and its peaks seed one watershed basin per nucleus.
    """
    from scipy import ndimage as ndi

    out = np.zeros(labels.shape, np.float32)
    for i, lab in enumerate(labels[:, 0].numpy().astype(np.int64)):
        if lab.max() == 0:
            continue
        mx = ndi.maximum_filter(lab, 3)
        mn = ndi.minimum_filter(lab, 3)
        inner = (lab > 0) & (mx == lab) & (mn == lab)
        dist = ndi.distance_transform_edt(inner) + (lab > 0)
        peak = ndi.maximum(dist, lab, np.arange(lab.max() + 1))
        peak = np.asarray(peak, np.float64)
        out[i, 0] = np.where(lab > 0, dist / np.maximum(peak[lab], 1.0), 0.0)
    return torch.from_numpy(out)


def targets_from_labels(labels: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) float labels -> (N, 2, H, W) targets: foreground and a 2-pixel border ring."""
    mx = F.max_pool2d(labels, 3, 1, 1)
    mn = -F.max_pool2d(-labels, 3, 1, 1)
    border = (mx != mn) & (mx > 0)
    return torch.cat([(labels > 0).float(), border.float()], dim=1)


def contact_from_labels(labels: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) float labels -> (N, 1, H, W) float mask of where two nuclei touch.

    A pixel is a contact pixel when its 3x3 neighbourhood holds two different nuclei: the
    thin lines (and one-pixel gaps) that a watershed needs to split touching nuclei.
    """
    mx = F.max_pool2d(labels, 3, 1, 1)
    big = torch.where(labels > 0, labels, torch.full_like(labels, float("inf")))
    mn_nucleus = -F.max_pool2d(-big, 3, 1, 1)
    return ((mx > 0) & (mn_nucleus < mx)).float()


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of every channel of ``(N, C, H, W)`` (reflected edges)."""
    r = int(math.ceil(2 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


class Augmenter:
    """Random training crops of ``size`` with spatial and intensity augmentation.

    Parameters
    ----------
    size : int
        Output crop edge.
    scale : tuple of float
        Range of source pixels per output pixel (log-uniform); >1 zooms out.
    elastic : float
        Displacement amplitude of the elastic warp, in output pixels.
    intensity : bool
        Brightness/contrast/gamma, blur and noise.
    dim_nuclei : float
        Share of crops in which about half of the nuclei are dimmed, each by its own factor
        (``dim_range``), so that faint nuclei beside bright ones are learnt as nuclei.
    dim_range : tuple of float
        Range of the remaining brightness (above background) of a dimmed nucleus.
    stain_jitter : float
        Half-width of the log-scale range of the per-channel jitter of stained crops (the shift
        range is a third of it).
    noise : float
        Largest standard deviation of the Gaussian noise added to 40 % of the crops (the image is
        normalised to about [0, 1]).
    blur : float
        Largest sigma (pixels) of the Gaussian blur of 25 % of the crops (out of focus).
    quantize : float
        Share of crops quantised to 8-64 grey levels over [0, 1] (a dim 8-bit acquisition).
    light : float
        Share of crops lit unevenly: multiplied by a ramp in a random direction falling to
        30-100 % (vignetting, a tilted lamp), and for half of them an added ramp of up to 0.3
        (a background that is brighter on one side, as inverted bright-field shows it).
    """

    def __init__(self, size: int = 256, scale=(0.6, 1.6), elastic: float = 6.0,
                 intensity: bool = True, seed: int | None = None, dim_nuclei: float = 0.0,
                 dim_range=(0.2, 0.7), stain_jitter: float = 0.3, noise: float = 0.06,
                 blur: float = 1.5, quantize: float = 0.0, light: float = 0.0):
        self.size = size
        self.scale = scale
        self.elastic = elastic
        self.intensity = intensity
        self.dim_nuclei = dim_nuclei
        self.dim_range = dim_range
        self.stain_jitter = stain_jitter
        self.noise = noise
        self.blur = blur
        self.quantize = quantize
        self.light = light
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(int(self.rng.integers(2**31)))

    def _sample_one(self, image: np.ndarray, labels: np.ndarray, region=None):
        rng = self.rng
        s = math.exp(rng.uniform(math.log(self.scale[0]), math.log(self.scale[1])))
        span = self.size * s
        src = int(math.ceil(span * 1.5)) + 4  # room for any rotation
        h, w = image.shape[-2:]
        if region is None:
            region = (0, 0, h, w)
        ry0, rx0, ry1, rx1 = region
        fg = np.flatnonzero(labels[ry0:ry1, rx0:rx1].ravel()) if rng.random() < 0.5 else None
        if fg is not None and fg.size:
            idx = fg[rng.integers(fg.size)]
            cy, cx = ry0 + idx // (rx1 - rx0), rx0 + idx % (rx1 - rx0)
        else:
            cy, cx = rng.integers(ry0, ry1), rng.integers(rx0, rx1)
        crop = _crop(image, cy, cx, src)
        img = torch.from_numpy(crop)[None] if crop.ndim == 3 else torch.from_numpy(crop)[None, None]
        lab = torch.from_numpy(_crop(labels.astype(np.float32), cy, cx, src))[None, None]
        angle = rng.uniform(0, 2 * math.pi)
        flip = -1.0 if rng.random() < 0.5 else 1.0
        k = span / src
        c, sn = math.cos(angle) * k, math.sin(angle) * k
        theta = torch.tensor([[c * flip, -sn, 0.0], [sn * flip, c, 0.0]], dtype=torch.float32)[None]
        grid = F.affine_grid(theta, (1, img.shape[1], self.size, self.size), align_corners=False)
        if self.elastic > 0:
            coarse = torch.randn((1, 2, 5, 5), generator=self.gen) * (2 * self.elastic / src)
            disp = F.interpolate(coarse, size=(self.size, self.size), mode="bicubic",
                                 align_corners=False)
            grid = grid + disp.permute(0, 2, 3, 1) * k * src / self.size
        out_img = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out_lab = F.grid_sample(lab, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        return out_img, out_lab

    def _variant(self, sample) -> np.ndarray:
        """The sample's image or one of its stain variants (``Sample.variants``), at random."""
        variants = getattr(sample, "variants", ())
        if not variants:
            return sample.image
        k = int(self.rng.integers(len(variants) + 1))
        return sample.image if k == 0 else variants[k - 1]

    def _dim(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Dim a random half of the nuclei of some crops towards their local background.

        The background of a nucleus is the mean of a thin ring around it, so dimmed nuclei
        keep their surroundings (no dark halo).
        """
        rng = self.rng
        out = []
        for xi, li in zip(x, labels):
            ids = int(li.max())
            if ids == 0 or rng.random() >= self.dim_nuclei:
                out.append(xi)
                continue
            loss = rng.uniform(1 - self.dim_range[1], 1 - self.dim_range[0], ids + 1)
            loss[rng.random(ids + 1) < 0.5] = 0.0
            loss[0] = 0.0
            near = F.max_pool2d(li[None], 5, 1, 2)[0].long()  # id of a nucleus within 2 px
            ring = ((li == 0) & (near > 0))[0]
            counts = torch.bincount(near[0][ring], minlength=ids + 1)
            sums = torch.stack([torch.bincount(near[0][ring], weights=ch[ring], minlength=ids + 1) for ch in xi])
            fallback = torch.quantile(xi.flatten(1)[:, :: max(1, xi[0].numel() // 4096)], 0.1, dim=1)
            bg = torch.where(counts > 0, sums / counts.clamp(min=1), fallback[:, None])  # channel x nucleus
            d = torch.from_numpy(loss.astype(np.float32))[near]
            d = F.avg_pool2d(d[None], 3, 1, 1)[0]  # soften the step at the outline
            b = bg[:, near[0]].float()
            out.append(b + (xi - b) * (1 - d))
        return torch.stack(out)

    def _stain_jitter(self, x: torch.Tensor, stained: np.ndarray) -> torch.Tensor:
        """Scale and shift each channel of stained crops on its own (HED jitter: the channels are
        the nucleus signal and the haematoxylin density), as computational pathology does."""
        n, c = x.shape[:2]
        if c == 1 or not stained.any():
            return x
        rng = self.rng
        j = self.stain_jitter
        scale = np.exp(rng.uniform(-j, j, (n, c))) * stained[:, None] + (1 - stained[:, None])
        shift = rng.uniform(-j / 3, j / 3, (n, c)) * stained[:, None]
        return (x * torch.tensor(scale, dtype=torch.float32).view(n, c, 1, 1)
                + torch.tensor(shift, dtype=torch.float32).view(n, c, 1, 1))

    def _intensity(self, x: torch.Tensor) -> torch.Tensor:
        rng = self.rng
        n = x.shape[0]
        contrast = torch.tensor(rng.uniform(0.6, 1.4, n), dtype=torch.float32).view(n, 1, 1, 1)
        bright = torch.tensor(rng.uniform(-0.15, 0.15, n), dtype=torch.float32).view(n, 1, 1, 1)
        gamma = torch.tensor(np.exp(rng.uniform(-0.4, 0.4, n)), dtype=torch.float32).view(n, 1, 1, 1)
        x = x.clamp(min=0) ** gamma
        x = x * contrast + bright
        if self.light > 0:
            x = self._uneven_light(x)
        if rng.random() < 0.25:
            x = _gaussian_blur(x, rng.uniform(0.5, max(self.blur, 0.5)))
        noise = torch.tensor(rng.uniform(0, self.noise, n) * (rng.random(n) < 0.4), dtype=torch.float32)
        x = x + torch.randn(x.shape, generator=self.gen) * noise.view(n, 1, 1, 1)
        if self.quantize > 0:
            x = self._quantized(x)
        return x

    def _uneven_light(self, x: torch.Tensor) -> torch.Tensor:
        """``light``: a share of the crops lit by a linear ramp in a random direction."""
        rng = self.rng
        n, _, h, w = x.shape
        yy, xx = torch.meshgrid(torch.linspace(-0.5, 0.5, h), torch.linspace(-0.5, 0.5, w), indexing="ij")
        out = []
        for xi in x:
            if rng.random() >= self.light:
                out.append(xi)
                continue
            a = rng.uniform(0, 2 * math.pi)
            c, sn = math.cos(a), math.sin(a)
            ramp = (c * xx + sn * yy) / (abs(c) + abs(sn)) + 0.5  # 0..1 across the crop, corner to corner
            low = rng.uniform(0.3, 1.0)
            xi = xi * (1 - (1 - low) * ramp)
            if rng.random() < 0.5:
                xi = xi + rng.uniform(0, 0.3) * ramp
            out.append(xi)
        return torch.stack(out)

    def _quantized(self, x: torch.Tensor) -> torch.Tensor:
        """``quantize``: a share of the crops rounded to 8-64 levels over [0, 1]."""
        rng = self.rng
        levels = np.exp(rng.uniform(math.log(8), math.log(64), x.shape[0]))
        keep = rng.random(x.shape[0]) >= self.quantize
        q = torch.tensor(np.where(keep, 0.0, levels), dtype=torch.float32).view(-1, 1, 1, 1)
        return torch.where(q > 0, torch.round(x * q) / q.clamp(min=1), x)

    def batch(self, samples, batch_size: int, regions=None, weights=None,
              contact: bool = False, distance: bool = False) -> tuple[torch.Tensor, ...]:
        """A batch ``(x, y)``: x ``(B, C, S, S)`` images, y ``(B, 2, S, S)`` foreground/border targets.

        ``regions`` (one ``(y0, x0, y1, x1)`` or None per sample) restricts crop centres;
        ``weights`` (probabilities per sample) replaces uniform choice of samples;
        ``contact=True`` adds a third item, the ``(B, 1, S, S)`` mask of ``contact_from_labels``;
        ``distance=True`` adds a third target channel, ``distance_from_labels``.
        """
        x, labs = self.crops(samples, batch_size, regions, weights)
        y = targets_from_labels(labs)
        if distance:
            y = torch.cat([y, distance_from_labels(labs)], dim=1)
        if contact:
            return x, y, contact_from_labels(labs)
        return x, y

    def crops(self, samples, batch_size: int, regions=None, weights=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented crops ``(B, C, S, S)`` and their instance labels ``(B, 1, S, S)`` (float ids),
        for the arguments of ``batch``."""
        xs, labs, stained = [], [], []
        for _ in range(batch_size):
            if weights is None:
                i = int(self.rng.integers(len(samples)))
            else:
                i = int(self.rng.choice(len(samples), p=weights))
            region = regions[i] if regions is not None else None
            xi, li = self._sample_one(self._variant(samples[i]), samples[i].labels, region)
            stained.append(getattr(samples[i], "kind", "") == "stained")
            xs.append(xi)
            labs.append(li)
        x = torch.cat(xs)
        labs = torch.cat(labs)
        if self.dim_nuclei > 0:
            x = self._dim(x, labs)
        if self.intensity:
            x = self._stain_jitter(self._intensity(x), np.array(stained, np.float64))
        return x, labs
