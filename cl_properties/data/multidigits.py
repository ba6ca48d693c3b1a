"""MultiDigits (paper section 3) and the modified two-digit variant (section 4).

MultiDigits: several digits on a black canvas (default 112x112 with 28 px digits), on a grid
or at random non-overlapping positions, with per-digit class labels and per-pixel instance
and semantic masks, so k-means segmentations of local features can be scored.
Two digits: one digit of fixed size and one of variable size at random non-overlapping
positions; the probe accuracy of the fixed (small) digit drops as the other grows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cl_properties.data.digits import DigitArrays, load_digits, resize_digits

LAYOUTS = ("grid", "random")
TWO_DIGIT_LAYOUTS = ("random", "sides")
SIDES_JITTER = 4  # px the fixed digit of the "sides" layout moves each way
_MAX_RESTARTS = 100  # random layout: fresh attempts for an image before giving up


class MultiDigitsArrays(NamedTuple):
    """A multi-digit dataset.

    images: float32 [N, S, S, 1] in [0, 1].
    labels: name -> int32 [N] digit classes ("digit0", "digit1", ... or "fixed", "variable").
    instance_masks: int32 [N, S, S]; 0 = background, i + 1 on the pixels of digit i
        (i = position of its label name in `labels`).
    semantic_masks: int32 [N, S, S]; digit class + 1 on foreground pixels, 0 elsewhere.
    boxes: int32 [N, D, 4]; (top, left, height, width) of digit i's pasted square.
    """

    images: np.ndarray
    labels: dict[str, np.ndarray]
    instance_masks: np.ndarray
    semantic_masks: np.ndarray
    boxes: np.ndarray


def make_multidigits(
    n: int,
    *,
    canvas: int = 112,
    num_digits: int = 2,
    digit_size: int = 28,
    layout: str = "grid",
    seed: int = 0,
    digits: DigitArrays | None = None,
    split: str = "train",
    threshold: float = 0.3,
) -> MultiDigitsArrays:
    """`n` canvases of `num_digits` digits of `digit_size` px each.

    layout="grid": the canvas is cut into g x g cells, g = ceil(sqrt(num_digits)), of
    canvas // g px; each digit is centred in a distinct cell chosen at random.
    layout="random": uniformly random positions, each digit's square disjoint from the others
    (placed one by one among the free positions).
    Digit i is the i-th in reading order (by top, then left); labels "digit{i}".
    Digits are drawn uniformly with replacement from `digits` (default: scikit-learn digits
    `split`, native 8x8) and resized bilinearly. Mask foreground = pasted pixels > `threshold`.
    Raises ValueError if the digits cannot fit the canvas.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if num_digits < 1:
        raise ValueError(f"num_digits must be >= 1, got {num_digits}")
    _check_n(n)
    _check_size(digit_size, canvas)
    g = int(np.ceil(np.sqrt(num_digits)))
    if layout == "grid" and digit_size > canvas // g:
        raise ValueError(
            f"{num_digits} digits of {digit_size} px do not fit a {g}x{g} grid on a {canvas} px "
            f"canvas (cells of {canvas // g} px)"
        )
    if layout == "random" and num_digits > (canvas // digit_size) ** 2:
        raise ValueError(
            f"{num_digits} disjoint digits of {digit_size} px do not fit a {canvas} px canvas"
        )
    rng = np.random.default_rng(seed)
    sizes = np.full((n, num_digits), digit_size)
    if layout == "grid":
        cell = canvas // g
        chosen = np.sort(np.argsort(rng.random((n, g * g)), axis=1)[:, :num_digits], axis=1)
        corners = np.stack([chosen // g, chosen % g], axis=-1) * cell + (cell - digit_size) // 2
    else:
        corners = np.stack([_place(row, canvas, rng) for row in sizes])
        order = np.lexsort((corners[..., 1], corners[..., 0]), axis=-1)
        corners = np.take_along_axis(corners, order[..., None], axis=1)
    names = [f"digit{i}" for i in range(num_digits)]
    return _render(names, canvas, corners, sizes, _source(digits, split), rng, threshold)


def make_two_digits(
    n: int,
    *,
    canvas: int = 112,
    fixed_size: int = 20,
    variable_size: int | tuple[int, int] = (20, 80),
    seed: int = 0,
    digits: DigitArrays | None = None,
    split: str = "train",
    threshold: float = 0.3,
    layout: str = "random",
) -> MultiDigitsArrays:
    """The modified two-digit MultiDigits: a `fixed_size` digit and a variable-size digit.

    The variable digit's side is drawn uniformly from the inclusive range `variable_size`
    (an int means that size for every image). Layouts (`TWO_DIGIT_LAYOUTS`):
    - "random" (the paper's): both squares at uniformly random disjoint positions;
    - "sides": the fixed digit at the left edge, vertically centred, shifted by up to
      `SIDES_JITTER` px each way; the variable digit at a uniformly random position in the
      strip to its right. An encoder that is not translation invariant (ConvN flattens its
      last feature map) can then learn the fixed digit, which at random positions it cannot
      in a CI-scale run (a supervised ConvN: 0.44 on an 8 px digit on a 32 px canvas).
    Labels "fixed" (instance id 1) and "variable" (instance id 2). Raises ValueError for an
    unknown layout or digits that do not fit side by side (fixed_size + max(variable_size)
    <= canvas; with "sides" also the jitter and a 1 px gap).
    """
    _check_n(n)
    low, high = (variable_size, variable_size) if isinstance(variable_size, int) else variable_size
    if not 1 <= low <= high:
        raise ValueError(
            f"variable_size must be a size or a range low <= high, got {variable_size}"
        )
    _check_size(fixed_size, canvas)
    check_two_digits_fit(canvas, fixed_size, high, layout)
    rng = np.random.default_rng(seed)
    sizes = np.stack([np.full(n, fixed_size), rng.integers(low, high + 1, size=n)], axis=1)
    if layout == "sides":
        corners = _sides(sizes, canvas, rng)
    else:
        corners = np.stack([_place(row, canvas, rng) for row in sizes])
    source = _source(digits, split)
    return _render(["fixed", "variable"], canvas, corners, sizes, source, rng, threshold)


def check_two_digits_fit(canvas: int, fixed_size: int, largest: int, layout: str) -> None:
    """Raises ValueError unless a `fixed_size` and a `largest` px digit fit side by side on
    the canvas in `layout` ("sides" also keeps the fixed digit's jitter and a 1 px gap)."""
    if layout not in TWO_DIGIT_LAYOUTS:
        raise ValueError(f"layout must be one of {TWO_DIGIT_LAYOUTS}, got {layout!r}")
    margin = SIDES_JITTER + 1 if layout == "sides" else 0
    if fixed_size + margin + largest > canvas:
        raise ValueError(
            f"a {fixed_size} px and a {largest} px digit do not fit side by side on a "
            f"{canvas} px canvas" + (f" with the {layout} layout" if margin else "")
        )


def _sides(sizes: np.ndarray, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """Corners int [N, 2, 2] of the "sides" layout for sizes [N, 2] (fixed, variable)."""
    n, (fixed, variable) = len(sizes), sizes.T
    fixed_top = (canvas - fixed) // 2 + rng.integers(-SIDES_JITTER, SIDES_JITTER + 1, size=n)
    fixed_left = rng.integers(0, SIDES_JITTER + 1, size=n)
    strip = fixed + SIDES_JITTER + 1  # the variable digit's leftmost column
    variable_left = strip + rng.integers(0, canvas - strip - variable + 1)
    variable_top = rng.integers(0, canvas - variable + 1)
    return np.stack(
        [np.stack([fixed_top, fixed_left], -1), np.stack([variable_top, variable_left], -1)], 1
    )


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")


def _check_size(size: int, canvas: int) -> None:
    if not 1 <= size <= canvas:
        raise ValueError(f"digit size {size} px does not fit a {canvas} px canvas")


def _source(digits: DigitArrays | None, split: str) -> DigitArrays:
    source = load_digits(split, size=8) if digits is None else digits
    if len(source.images) == 0 or source.images.shape[-1] != 1:
        raise ValueError(f"digits must be non-empty grey images, got {source.images.shape}")
    return source


def _place(sizes: np.ndarray, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """Disjoint random squares of the given sides: int [D, 2] top-left corners (input order).

    Squares are placed largest first, each uniformly among the corners free of overlap with
    those already placed; a dead end restarts the image.
    """
    order = np.argsort(-sizes, kind="stable")
    for _ in range(_MAX_RESTARTS):
        corners = np.zeros((len(sizes), 2), np.int64)
        placed: list[tuple[int, int, int]] = []
        for i in order:
            s = sizes[i]
            t = np.arange(canvas - s + 1)
            free = np.ones((t.size, t.size), bool)
            for top, left, side in placed:
                rows = (t + s <= top) | (t >= top + side)
                cols = (t + s <= left) | (t >= left + side)
                free &= rows[:, None] | cols[None, :]
            candidates = np.flatnonzero(free)
            if candidates.size == 0:
                break
            top, left = divmod(int(rng.choice(candidates)), t.size)
            corners[i] = top, left
            placed.append((top, left, s))
        else:
            return corners
    raise ValueError(f"could not place digits of sizes {sizes.tolist()} on a {canvas} px canvas")


def _render(
    names: list[str],
    canvas: int,
    corners: np.ndarray,
    sizes: np.ndarray,
    source: DigitArrays,
    rng: np.random.Generator,
    threshold: float,
) -> MultiDigitsArrays:
    """Paste random source digits (resized to `sizes` [N, D]) at `corners` [N, D, 2]."""
    n, num = sizes.shape
    chosen = rng.integers(len(source.images), size=(n, num))
    classes = source.labels[chosen].astype(np.int32)
    patches = np.empty((n, num), dtype=object)
    for side in np.unique(sizes):  # one resize call per distinct size
        where = np.nonzero(sizes == side)
        resized = resize_digits(source.images[chosen[where]], int(side))
        for i, j, patch in zip(*where, resized):
            patches[i, j] = patch[..., 0]
    images = np.zeros((n, canvas, canvas, 1), np.float32)
    instance = np.zeros((n, canvas, canvas), np.int32)
    semantic = np.zeros((n, canvas, canvas), np.int32)
    for i in range(n):
        for j in range(num):
            top, left, side = corners[i, j, 0], corners[i, j, 1], sizes[i, j]
            box = (i, slice(top, top + side), slice(left, left + side))
            images[box + (0,)] = patches[i, j]
            foreground = patches[i, j] > threshold
            instance[box][foreground] = j + 1
            semantic[box][foreground] = classes[i, j] + 1
    boxes = np.concatenate([corners, sizes[..., None], sizes[..., None]], axis=-1).astype(np.int32)
    return MultiDigitsArrays(
        images, {name: classes[:, j] for j, name in enumerate(names)}, instance, semantic, boxes
    )
