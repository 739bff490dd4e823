"""The catalogue of zoo models: each one an entry (name, weights file, card, with the card's
settings as methods), shipped first, then the user's own."""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "weights"
#: The name that always means the default model (no model may take it).
DEFAULT_ALIAS = "default"

DEFAULT_POSTPROCESS = {"threshold": 0.5, "border_threshold": 0.5, "min_size": 8, "min_mean_foreground": 0.0}


@dataclass(frozen=True)
class ModelEntry:
    """A zoo model: its name, weights file, card and whether the user made it."""

    name: str
    weights: Path
    card: dict
    user: bool

    @property
    def description(self) -> str:
        """One line for model pickers: description and validation DSB score (no citation keys)."""
        d = re.sub(r"\s*\(papers? [^)]*\)", "", self.card.get("description", self.card.get("architecture", "")))
        v = self.card.get("validation", {}).get("dsb_score")
        tag = " [user]" if self.user else ""
        kinds = sorted(self.card.get("specialists", {}))
        via = f"; {' and '.join(kinds)} images go to its specialists" if kinds else ""
        licence = f"; licence: {self.licence}" if "non-commercial" in self.licence.lower() else ""
        return f"{d}{tag}{via}{licence}" + (f" (val DSB {v:.3f})" if v is not None else "")

    @property
    def licence(self) -> str:
        """The weights' licence (card ``licence``; models trained on non-commercial data say so)."""
        return self.card.get("licence", "")

    def postprocess(self, kind: str | None = None) -> dict:
        """The post-processing settings tuned for this model (falls back to defaults); for images of
        ``kind`` (``kinds.image_kind``), with the settings its card tuned for that kind alone
        (``"postprocess_by_kind": {"stained": {...}}``: the stained specialist's border map also
        lights up the chromatin of large pale nuclei, so its smallest seeds are dropped;
        ``docs/training_log.md``)."""
        return {**DEFAULT_POSTPROCESS, **self.card.get("postprocess", {}),
                **self.card.get("postprocess_by_kind", {}).get(kind, {})}

    def target_diameter(self) -> float | None:
        """Nucleus diameter (pixels) the model segments best (card ``sizing.target_diameter``).

        ``segment()`` shrinks images whose nuclei are larger (``inference.sizing``); None: never
        rescale.
        """
        value = self.card.get("sizing", {}).get("target_diameter")
        return float(value) if value else None

    def unsure_below(self) -> float:
        """The image-level cut of this model's mean nucleus confidence (card ``confidence.unsure_below``;
        default ``inference.measure.UNSURE_BELOW``): below it, the model is unsure of the image."""
        from ..inference.measure import UNSURE_BELOW

        value = self.card.get("confidence", {}).get("unsure_below")
        return float(value) if value is not None else UNSURE_BELOW

    def coarse_look(self) -> bool:
        """Whether nuclei many times the training size are measured on a coarse look
        (``sizing.coarse_diameter``; card ``sizing.coarse_look``).

        The look's thresholds were checked on the clean images of a model's own routes: with the
        default model it overrules no first pass and is trusted alone on one image, rightly. Other
        models' maps can read a dense clean field as a few huge nuclei (``docs/sizing.md``), so they
        do not look unless their card says so.
        """
        return bool(self.card.get("sizing", {}).get("coarse_look", False))

    @property
    def outputs_instances(self) -> bool:
        """Whether the network is an instance model (card ``"outputs": ["instances"]``: boxes,
        scores and masks, pasted into labels by ``inference.detect``) rather than a map model
        (foreground and border maps that the watershed splits)."""
        return "instances" in self.card.get("outputs", [])

    def input_channels(self) -> int:
        """Input planes the network takes (``inference.preprocess.prepare_channels``)."""
        return int(self.card.get("config", {}).get("in_channels", 1))

    def stain_signal(self) -> str:
        """Nucleus signal of stained colour images the network was trained on (card
        ``stain_signal``: ``"darkest"`` channel, the default, or ``"red"``; ``preprocess.nucleus_signal``)."""
        return str(self.card.get("stain_signal", "darkest"))

    def percentiles(self) -> tuple[float, float]:
        """Percentiles of the input normalisation (card ``normalize.percentiles``, e.g. of a model
        imported from bioimage.io; ours: ``preprocess.PERCENTILES``)."""
        from ..inference.preprocess import PERCENTILES

        low, high = self.card.get("normalize", {}).get("percentiles", PERCENTILES)
        return float(low), float(high)

    def prepare(self, image, kind: str, illumination=None):
        """``image`` as this network's input (``preprocess.prepare_channels`` with the card's
        input channels, stain signal and normalisation; ``illumination``: the light over a
        bright-field image, measured when None)."""
        from ..inference.preprocess import prepare_channels

        return prepare_channels(image, channels=self.input_channels(), kind=kind, stain_signal=self.stain_signal(),
                                percentiles=self.percentiles(), illumination=illumination)

    def for_kind(self, kind: str | None) -> ModelEntry:
        """The model that segments images of ``kind`` for this one.

        A card may name specialists by image kind (``"specialists": {"stained": "resunet32-stained"}``,
        kinds of ``kinds.image_kind``); any other kind, or a specialist that is not
        installed, gets this entry itself.
        """
        name = self.card.get("specialists", {}).get(kind) if kind else None
        if name:
            for e in list_models():
                if e.name == name:
                    return e
            warnings.warn(f"model {self.name!r} hands {kind} images to {name!r}, which is not installed: "
                          f"{self.name!r} segments them itself", stacklevel=2)
        return self

    def weight_files(self) -> list[Path]:
        """Every weights file this model's results depend on: its own, then its specialists'."""
        kinds = sorted(self.card.get("specialists", {}))
        files = [self.weights] + [self.for_kind(k).weights for k in kinds]
        return list(dict.fromkeys(files))


def user_models_dir() -> Path:
    """Folder of user models: ``$NUCLEISEG_USER_DIR`` or the platform's user data folder."""
    env = os.environ.get("NUCLEISEG_USER_DIR")
    if env:
        return Path(env) / "models"
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-nucleiseg", appauthor=False)) / "models"


#: Post-processing settings that are fractions (0-1); the others are sizes in pixels.
FRACTIONS = ("threshold", "border_threshold", "min_mean_foreground")


def is_number(v) -> bool:
    """True for an int or float that is not a bool (a card's scores and settings)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def unsure_below_of(name: str) -> float:
    """``ModelEntry.unsure_below`` of the model called ``name`` (``UNSURE_BELOW`` if it is gone)."""
    from ..inference.measure import UNSURE_BELOW

    try:
        return get_entry(name).unsure_below()
    except (KeyError, FileNotFoundError):
        return UNSURE_BELOW


def card_problem(card) -> str | None:
    """Why a card cannot be used (None when it can): not an object, or fields of the wrong type."""
    if not isinstance(card, dict):
        return f"the card is a JSON {type(card).__name__}, not an object"
    for key in ("validation", "postprocess", "sizing", "specialists", "config", "normalize", "imported",
                "postprocess_by_kind", "confidence"):
        if key in card and not isinstance(card[key], dict):
            return f"'{key}' is not an object"
    by_kind = card.get("postprocess_by_kind", {})
    if not all(isinstance(v, dict) for v in by_kind.values()):
        return "a kind's post-processing in 'postprocess_by_kind' is not an object"
    settings = [*card.get("postprocess", {}).items(), *(kv for v in by_kind.values() for kv in v.items())]
    numbers = [card.get("validation", {}).get(k) for k in ("dsb_score", "ap50")]
    numbers += [card.get("sizing", {}).get("target_diameter")]
    if any(v is not None and not is_number(v) for v in numbers):
        return "a score or the nucleus size is not a number"
    cut = card.get("confidence", {}).get("unsure_below")
    if cut is not None and not (is_number(cut) and 0 <= cut <= 1):
        return "'confidence.unsure_below' is not a number from 0 to 1"
    if any(not (is_number(v) or (k == "seed" and isinstance(v, str))) for k, v in settings):
        return "a post-processing setting is not a number"
    if any(is_number(v) and not (0 <= v <= (1 if k in FRACTIONS else 1e7)) for k, v in settings):
        return f"a post-processing setting is out of range ({', '.join(FRACTIONS)} 0-1, sizes 0 or more)"
    for key in ("name", "description", "licence", "stain_signal"):
        if not isinstance(card.get(key, ""), str):
            return f"'{key}' is not text"
    from ..inference.preprocess import STAIN_SIGNALS

    if card.get("stain_signal", STAIN_SIGNALS[0]) not in STAIN_SIGNALS:
        return f"'stain_signal' is not one of {', '.join(STAIN_SIGNALS)}"
    for key in ("suggest_for", "outputs"):
        if key in card and not (isinstance(card[key], list) and all(isinstance(v, str) for v in card[key])):
            return f"'{key}' is not a list of names"
    return _sizes_problem(card)


def _whole(v, low: int, high: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _sizes_problem(card: dict) -> str | None:
    """Why a card's sizes cannot be used: network options, percentiles, nucleus size, tile padding."""
    from .foreign import ADAPTER_KEY, MAX_SIZE_MIN, MAX_SIZE_STEP

    config = card.get("config", {})
    if not all(_whole(v, 0, 4096) for v in config.values()) or not _whole(config.get("in_channels", 1), 1, 4):
        return "a network option in 'config' is not a whole number in range (in_channels 1-4)"
    percentiles = card.get("normalize", {}).get("percentiles", [1, 99.8])
    if not (isinstance(percentiles, list) and len(percentiles) == 2 and all(is_number(v) for v in percentiles)
            and 0 <= percentiles[0] < percentiles[1] <= 100):
        return "'normalize.percentiles' is not two numbers 0 <= low < high <= 100"
    diameter = card.get("sizing", {}).get("target_diameter")
    if diameter is not None and not 0 < diameter < 10_000:
        return "the nucleus size 'sizing.target_diameter' is not a positive number of pixels"
    adapter = card.get(ADAPTER_KEY)
    if adapter is not None and not (isinstance(adapter, dict) and _whole(adapter.get("size_min", 1), 1, MAX_SIZE_MIN)
                                    and _whole(adapter.get("size_step", 1), 1, MAX_SIZE_STEP)):
        return f"'{ADAPTER_KEY}' is not an object with sizes up to {MAX_SIZE_MIN} + n * {MAX_SIZE_STEP}"
    return None


def _entries(folder: Path, user: bool, taken: frozenset[str] = frozenset()) -> list[ModelEntry]:
    """The models of a folder; a bad card, or a user model named like a shipped one, is skipped
    with one warning naming the file, so that it never hides or breaks the other models.

    The cards are read again only when a card or weights file of the folder changed
    (``_signature``); the warnings are given on every call.
    """
    if not folder.is_dir():
        return []
    key = (folder, user, taken)
    signature = _signature(folder)
    cached = _READ.get(key)
    if cached is None or cached[0] != signature:
        cached = (signature, *_read_entries(folder, user, taken))
        _READ[key] = cached
    for card_path, why in cached[2]:
        _skip(card_path, why)
    return list(cached[1])


# (folder, user, taken) -> (signature, entries, skipped): reading ten cards costs milliseconds, a
# ``segment()`` call of a small image asks for them several times
_READ: dict[tuple, tuple] = {}


def _signature(folder: Path) -> tuple:
    """What identifies the card and weights files of ``folder`` now: name, inode, time, size."""
    out = []
    with os.scandir(folder) as it:
        for e in it:
            if e.name.endswith((".json", ".pt")):
                try:
                    s = e.stat()
                except OSError:  # removed while listed
                    continue
                out.append((e.name, s.st_ino, s.st_mtime_ns, s.st_size))
    return tuple(sorted(out))


#: A model card is a few kilobytes; a larger file is not read.
MAX_CARD_BYTES = 1 << 20


def _read_entries(folder: Path, user: bool, taken: frozenset[str]) -> tuple[list[ModelEntry], list]:
    """The entries of ``folder`` and the ``(card path, reason)`` of each card skipped."""
    out, skipped = [], []
    for card_path in sorted(folder.glob("*.json")):
        weights = card_path.with_suffix(".pt")
        if not weights.exists():
            continue
        try:
            if (size := card_path.stat().st_size) > MAX_CARD_BYTES:
                raise ValueError(f"{size >> 20} MiB, a card is at most {MAX_CARD_BYTES >> 20} MiB")
            card = json.loads(card_path.read_text())
        except RecursionError:
            skipped.append((card_path, "not readable as JSON (nested deeper than Python reads)"))
            continue
        except (OSError, ValueError) as exc:
            skipped.append((card_path, f"not readable as JSON ({exc})"))
            continue
        problem = card_problem(card)
        name = card.get("name", card_path.stem) if problem is None else None
        if problem is None and name in taken:
            problem = f"it is named like the shipped model {name!r}"
        elif problem is None and user and name == DEFAULT_ALIAS:  # "Default" is reachable: only this is the alias
            problem = f"{name!r} names the default model"
        if problem is not None:
            skipped.append((card_path, problem))
            continue
        out.append(ModelEntry(name, weights, card, user))
    return out, skipped


def _skip(card_path: Path, why: str) -> None:
    warnings.warn(f"{card_path}: model skipped: {why}", stacklevel=3)


def list_models() -> list[ModelEntry]:
    """All models: shipped first (default model first), then user models."""
    shipped = _entries(SHIPPED_DIR, user=False)
    shipped.sort(key=lambda e: (not e.card.get("default", False), e.name))
    return shipped + _entries(user_models_dir(), user=True, taken=frozenset(e.name for e in shipped))


def default_model_name() -> str:
    """Name of the shipped model marked ``default`` in its card."""
    return _default_of(list_models())


def _default_of(models: list[ModelEntry]) -> str:
    if not models:
        raise FileNotFoundError(f"no model weights found in {SHIPPED_DIR}")
    return models[0].name


def get_entry(name: str | None = DEFAULT_ALIAS) -> ModelEntry:
    """Look up a model by name (``"default"`` or None: the default model)."""
    models = list_models()
    if name in (None, DEFAULT_ALIAS):
        name = _default_of(models)
    for e in models:
        if e.name == name:
            return e
    known = ", ".join(e.name for e in models)
    raise KeyError(f"unknown model {name!r}; available: {known}")


def suggested_for(kind: str) -> list[ModelEntry]:
    """Opt-in models whose card suggests them for this image kind (card ``suggest_for``)."""
    return [e for e in list_models() if kind in e.card.get("suggest_for", [])]
