"""`mfm.settings`: how much mfm logs, following scanpy's verbosity unless told otherwise."""

from __future__ import annotations

import logging
import sys

import scanpy as sc
from scanpy import Verbosity

#: The logger every ``mfm`` module logs under (``logging.getLogger(__name__)``).
LOGGER_NAME = "mfm"


class Settings:
    """Global settings of mfm, available as ``mfm.settings``.

    mfm logs through the standard `logging` module (loggers ``mfm.*``). A handler on the
    ``mfm`` logger writes to standard error the messages at or above :attr:`verbosity`, in
    scanpy's levels: ``0``/``"error"``, ``1``/``"warning"`` (scanpy's default), ``2``/``"info"``
    (what each verb did, the device `mfm.tl.fit` trains on), ``3``/``"hint"``, ``4``/``"debug"``.
    Until set, :attr:`verbosity` is ``scanpy.settings.verbosity`` at the time of each message.

    Examples
    --------
    >>> import mfm
    >>> mfm.settings.verbosity = "info"  # say what each verb does; None follows scanpy again
    >>> mfm.settings.verbosity = None
    """

    def __init__(self) -> None:
        self._verbosity: Verbosity | None = None

    @property
    def verbosity(self) -> Verbosity:
        """Verbosity of mfm's messages; ``scanpy.settings.verbosity`` until set.

        Accepts a `scanpy.Verbosity`, its name (``"error"``, ``"warning"``, ``"info"``,
        ``"hint"``, ``"debug"``) or its number (0 to 4); ``None`` follows scanpy again.
        """
        return sc.settings.verbosity if self._verbosity is None else self._verbosity

    @verbosity.setter
    def verbosity(self, value: Verbosity | str | int | None) -> None:
        self._verbosity = None if value is None else _as_verbosity(value)

    def __repr__(self) -> str:
        follows = " (scanpy's)" if self._verbosity is None else ""
        return f"mfm.settings(verbosity={self.verbosity.name!r}{follows})"


def _as_verbosity(value: Verbosity | str | int) -> Verbosity:
    """Turn a verbosity name, number or `scanpy.Verbosity` into a `scanpy.Verbosity`."""
    try:
        if isinstance(value, str):
            return Verbosity[value.lower()]
        if isinstance(value, bool):
            raise ValueError  # True/False are not levels
        return Verbosity(value)
    except (KeyError, ValueError):
        choices = [f"{v.value}/{v.name!r}" for v in Verbosity]
        msg = (
            f"`mfm.settings.verbosity` must be one of {', '.join(choices)} or None, got {value!r}."
        )
        raise ValueError(msg) from None


settings = Settings()


class _VerbosityFilter(logging.Filter):
    """Let through the records at or above the current ``settings.verbosity``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= settings.verbosity.level


class _StderrHandler(logging.StreamHandler):
    """Stream handler writing to the *current* ``sys.stderr`` (notebooks and pytest replace it)."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(_VerbosityFilter())
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class assigns it; the current stderr wins
        pass


def _install_handler() -> None:
    """Give the ``mfm`` logger its verbosity-filtered stderr handler (once).

    The logger passes every record (level DEBUG) to that handler, which filters by
    :attr:`Settings.verbosity` when the message is emitted, so changing scanpy's or mfm's
    verbosity takes effect at once. Records still propagate to the root logger, where handlers
    the user configured (and pytest's ``caplog``) see them.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.DEBUG)
