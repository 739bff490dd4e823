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
