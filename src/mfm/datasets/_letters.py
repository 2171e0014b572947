"""`mfm.datasets.letters`: the synthetic letters data set of Meta Flow Matching."""

from __future__ import annotations

import logging
import string
from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from anndata import AnnData
from PIL import Image, ImageDraw, ImageFont

from .. import _keys as K
from .._checks import check_positive_int
from .._utils import RandomState, as_numpy_rng
from ._common import categorical, cell_names, check_nonnegative, seed_param

logger = logging.getLogger(__name__)

#: Letters held out for validation and for testing; all others are for training.
VAL_LETTER, TEST_LETTER = "X", "Y"
#: Conditions, in order: the noisy source and the clean target of each (letter, rotation).
SOURCE, TARGET = "source", "target"
#: Points lie in the disc of this radius (before noise), so any rotation stays in [-3, 3]^2.
EXTENT = 3.0
_CANVAS_PX, _FONT_PX = 96, 80


def letters(
    *,
    n_points: int = 1000,
    n_rotations: int = 10,
    letters: str | None = None,
    target_noise: float = 0.05,
    source_noise: float = 0.5,
    random_state: RandomState = 0,
) -> AnnData:
    r"""Point clouds shaped like rotated capital letters, with noisy paired sources.

    The synthetic data set of Meta Flow Matching (Atanackovic et al. 2024). Each capital
    letter is rendered once as a silhouette (DejaVu Sans, the font shipped with matplotlib);
    its foreground pixels, centred on their mean and scaled so that they lie in the disc of
    radius 3, form the letter's shape :math:`S_\ell \subset \mathbb{R}^2`. For every
    letter :math:`\ell` and rotation index :math:`r`, with an angle
    :math:`\theta_{\ell r} \sim U[0, 2\pi)`,

    .. math::

        y_i = R(\theta_{\ell r})\, u_i + \varepsilon_i, \qquad
        x_i = y_i + \eta_i, \qquad
        \varepsilon_i \sim N(0, \sigma_t^2 I), \; \eta_i \sim N(0, \sigma_s^2 I),

    where :math:`u_i` is a uniformly drawn foreground pixel plus a uniform offset within the
    pixel. The targets :math:`y_i` form the ``"target"`` population, the sources
    :math:`x_i` the ``"source"`` population (paired: row ``i`` of one is row ``i`` of the
    other). The population of letter X is for validation, Y for testing, all others for
    training.

    Parameters
    ----------
    n_points
        Points per population (the same for source and target).
    n_rotations
        Random rotations (populations) per letter.
    letters
        Capital letters to include, e.g. ``"AOXY"``; ``None`` for ``A`` to ``Z``.
    target_noise
        Standard deviation :math:`\sigma_t` of the noise added to the rotated shape.
    source_noise
        Standard deviation :math:`\sigma_s` of the noise added to the targets to make the
        sources.
    random_state
        Seed or generator of the angles, the points and the noise.

    Returns
    -------
    AnnData with ``n_letters * n_rotations * 2 * n_points`` cells, ordered by letter,
    rotation, condition (source first), point; ``X`` float32 ``(n, 2)`` with var_names
    ``["x", "y"]``; ``obs`` columns ``letter`` (categorical), ``rotation`` (int),
    ``angle`` (float, radians), ``condition`` (categorical ``["source", "target"]``) and
    ``split`` (categorical ``["train", "val", "test"]``); ``uns["letters"]``: the
    parameters as plain types.

    Examples
    --------
    >>> adata = mfm.datasets.letters(n_points=200, n_rotations=4)
    >>> mfm.pp.populations(adata, sample_key=["letter", "rotation"],
    ...                    condition_key="condition", control="source")
    """
    chosen = _check_letters_args(n_points, n_rotations, letters, target_noise, source_noise)
    rng = as_numpy_rng(random_state)
    angles = rng.uniform(0.0, 2.0 * np.pi, size=(len(chosen), n_rotations))
    blocks = [
        _sample_letter(letter, angles[i], n_points, target_noise, source_noise, rng)
        for i, letter in enumerate(chosen)
    ]
    adata = AnnData(
        X=np.concatenate(blocks).reshape(-1, 2).astype(np.float32),
        obs=_letters_obs(chosen, angles, n_points),
        var=pd.DataFrame(index=["x", "y"]),
    )
    adata.uns["letters"] = {
        "n_points": n_points,
        "n_rotations": n_rotations,
        "letters": "".join(chosen),
        "target_noise": float(target_noise),
        "source_noise": float(source_noise),
        **seed_param(random_state),
    }
    logger.info("simulated letters %s: %d cells", "".join(chosen), adata.n_obs)
    return adata


def letter_shape(letter: str) -> np.ndarray:
    """Return the foreground pixel centres of ``letter``, centred and scaled, ``(m, 2)``.

    Parameters
    ----------
    letter
        One capital letter ``A`` to ``Z``.

    Returns
    -------
    Read-only float64 array of pixel centres (x right, y up) with mean zero; every point of
    the pixel squares around them lies within distance 3 of the origin. Cached.
    """
    return _render(letter)[0]


@cache
def _render(letter: str) -> tuple[np.ndarray, float]:
    """Rasterise ``letter`` and return its pixel centres ``(m, 2)`` and the pixel size."""
    font = ImageFont.truetype(str(_font_path()), _FONT_PX)
    image = Image.new("L", (_CANVAS_PX, _CANVAS_PX), 0)
    centre = _CANVAS_PX / 2
    ImageDraw.Draw(image).text((centre, centre), letter, fill=255, font=font, anchor="mm")
    rows, cols = np.nonzero(np.asarray(image) >= 128)
    # image rows grow downwards: flip them so the letter is upright
    points = np.column_stack([cols, -rows]).astype(np.float64)
    points -= points.mean(axis=0)
    # the within-pixel jitter reaches a pixel's corner, sqrt(2)/2 pixels from its centre
    pixel = EXTENT / (np.linalg.norm(points, axis=1).max() + np.sqrt(0.5))
    points *= pixel
    points.setflags(write=False)
    return points, float(pixel)


def _font_path() -> Path:
    """Return the path of the DejaVu Sans TTF file shipped with matplotlib."""
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def _sample_letter(
    letter: str,
    angles: np.ndarray,
    n_points: int,
    target_noise: float,
    source_noise: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sample ``(n_rotations, 2, n_points, 2)`` source and target points of one letter."""
    pixels, pixel = _render(letter)
    n_rotations = len(angles)
    index = rng.integers(len(pixels), size=(n_rotations, n_points))
    shape = pixels[index] + rng.uniform(-pixel / 2, pixel / 2, size=(n_rotations, n_points, 2))
    cos, sin = np.cos(angles), np.sin(angles)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    target = np.einsum("rij,rnj->rni", rotation, shape)
    target += rng.normal(0.0, target_noise, size=target.shape)
    source = target + rng.normal(0.0, source_noise, size=target.shape)
    return np.stack([source, target], axis=1)


def _letters_obs(chosen: list[str], angles: np.ndarray, n_points: int) -> pd.DataFrame:
    """Per-cell annotations, in the order letter, rotation, condition, point."""
    n_letters, n_rotations = angles.shape
    per_letter = n_rotations * 2 * n_points
    letter_codes = np.repeat(np.arange(n_letters), per_letter)
    rotation = np.tile(np.repeat(np.arange(n_rotations), 2 * n_points), n_letters)
    condition = np.tile(np.repeat([0, 1], n_points), n_letters * n_rotations)
    split = np.array([_split_of(letter) for letter in chosen])[letter_codes]
    obs = pd.DataFrame(
        {
            "letter": categorical(letter_codes, chosen),
            "rotation": rotation,
            "angle": angles[letter_codes, rotation],
            "condition": categorical(condition, [SOURCE, TARGET]),
            "split": categorical(split, K.SPLITS),
        }
    )
    blocks = [f"{letter}{r}_{c}" for letter in chosen for r in range(n_rotations) for c in "st"]
    obs.index = cell_names(blocks, n_points)
    return obs


def _split_of(letter: str) -> int:
    """Index into :data:`mfm._keys.SPLITS` of ``letter``'s split."""
    if letter == VAL_LETTER:
        return K.SPLITS.index(K.VAL)
    if letter == TEST_LETTER:
        return K.SPLITS.index(K.TEST)
    return K.SPLITS.index(K.TRAIN)


def _check_letters_args(
    n_points: int,
    n_rotations: int,
    letters: str | None,
    target_noise: float,
    source_noise: float,
) -> list[str]:
    """Validate the arguments of :func:`letters`; return the chosen letters as a list."""
    check_positive_int("n_points", n_points)
    check_positive_int("n_rotations", n_rotations)
    check_nonnegative("target_noise", target_noise)
    check_nonnegative("source_noise", source_noise)
    if letters is None:
        return list(string.ascii_uppercase)
    chosen = list(letters) if isinstance(letters, str) else []
    valid = set(chosen) <= set(string.ascii_uppercase) and len(set(chosen)) == len(chosen)
    if not chosen or not valid:
        msg = (
            "`letters` must be a string of distinct capital letters A-Z, e.g. 'AOXY'; "
            f"got {letters!r}."
        )
        raise ValueError(msg)
    return chosen
