"""Names of fine-tuned models: checked, suggested, or made free."""

from __future__ import annotations

from ...errors import ModelNameError


def unique_name(base: str) -> str:
    """A free, valid model name derived from ``base`` (``base``, ``base-2``, ...)."""
    from ... import zoo

    stem = "".join(c if (c.isalnum() or c in "_.-") else "-" for c in base).strip("-._")[:56] or "model"
    for k in range(1, 1000):
        cand = stem if k == 1 else f"{stem}-{k}"
        try:
            zoo.check_name(cand)
            return cand
        except ValueError:
            continue
    raise ModelNameError(f"no free model name found for {base!r}")


def default_name(base_model: str) -> str:
    """Suggested name for a model fine-tuned from ``base_model``."""
    return unique_name(f"{base_model}-finetuned")


def check_name(name: str) -> None:
    """Raise :class:`ModelNameError` unless ``name`` is a valid, unused model name."""
    from ... import zoo

    try:
        zoo.check_name(name)
    except ValueError as exc:
        raise ModelNameError(str(exc)) from None
