"""Exceptions with messages meant for users (CLI one-liners, napari notifications)."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's text, at most ``limit`` characters ("" when it has none):
    what a one-line message quotes of an error raised by a library."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else ""


def printable(text) -> str:
    """``text`` with its control characters escaped (``\\n``, ``\\x1b``): a file name shown on a terminal
    can then neither forge a line nor send escape sequences."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


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


class OptionError(NucleisegError, ValueError):
    """An option is out of range or unknown (tile vs overlap, device name...); checked before any
    work starts. Also a ``ValueError`` for callers that catch those."""


class ImageTooLargeError(InvalidImageError):
    """An image cannot be segmented in the memory of this machine (found from its header or shape,
    before anything is allocated)."""


class StopsRun(NucleisegError):
    """An error that no other image of a batch would escape (a full or read-only output folder,
    unloadable weights): the batch stops early instead of failing every remaining image."""


class OutputWriteError(StopsRun):
    """Results could not be written; the message names the folder and the cause.

    Attributes
    ----------
    folder : str
    errno : int or None
        The operating system's error number (``errno.ENOSPC`` for a full disk...).
    """

    def __init__(self, folder, cause: OSError):
        self.folder = str(folder)
        self.errno = getattr(cause, "errno", None)
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        super().__init__(f"cannot write results to {self.folder}: {reason}")


class OutputBlockedError(NucleisegError):
    """One image's result file cannot be written because something is in its way (a folder of its
    name); the other images' results can, so a run goes on."""


class ModelLoadError(StopsRun):
    """A model's weights file cannot be loaded; the message names the file."""


class SchedulerLostError(StopsRun):
    """The Dask scheduler went away (or never answered) during a batch."""


class BioimageioMissing(NucleisegError):
    """The optional ``bioimageio`` extra is not installed; the message says how to install it."""


class PackageError(NucleisegError, ValueError):
    """A bioimage.io model package cannot be exported or imported; the message names the file and why.
    Also a ``ValueError`` for callers that catch those."""
