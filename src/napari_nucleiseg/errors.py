"""Exceptions with messages meant for users (CLI one-liners, napari notifications)."""


class NucleisegError(Exception):
    """Base class for errors that are shown to the user as one line."""


class ImageReadError(NucleisegError):
    """An input file could not be read as an image; the message names the file."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(f"{self.path}: {self.reason}")


class InvalidImageError(NucleisegError):
    """An image array cannot be segmented (wrong dimensions, empty, NaNs...)."""


class Cancelled(Exception):
    """Raised inside prediction or training when the caller's ``cancel()`` returns True."""


class FolderInUseError(NucleisegError):
    """Another live run holds the lock; the message names the folder, the run and the remedy."""


class FinetuneError(NucleisegError):
    """Fine-tuning cannot start or cannot go on; the message says why."""


class ShapeMismatchError(FinetuneError):
    """An image and its labels have different shapes."""


class EmptyLabelsError(FinetuneError):
    """A labels image (or its rectangle) contains no nuclei."""


class ModelNameError(FinetuneError):
    """The new model's name is invalid or used already."""


class FinetuneCancelled(FinetuneError):
    """Cancelled before the first training step: nothing was learnt, nothing saved."""
