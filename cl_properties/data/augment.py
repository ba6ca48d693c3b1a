"""SimCLR augmentations for two-view contrastive pretraining, and evaluation preprocessing.

One view of an image (SimCLR `preprocess_for_train`, per image, with `tf.image`):

    random resized crop -> horizontal flip -> colour jitter (p) -> grayscale (p)
    -> channel permutation (p) -> blur (p) -> clip to [0, 1] -> user augmentations
    (`extra_layers`)

All randomness is stateless: a view is a pure function of the image and an int64 [2] seed.
`example_seed(seed, index, epoch, view)` derives that seed from the run's seed, the example's
stable index, the epoch and the view number (1 or 2), so a pipeline is reproducible from its
seed alone, works in graph mode and in parallel `map`, and resuming at any position gives the
same views. Every built-in op draws from its own sub-seed, so switching one op off leaves the
random draws of the others unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import tensorflow as tf

RESIZE_METHODS = ("bilinear", "bicubic", "area", "nearest", "lanczos3")

# ImageNet evaluation: central crop keeping 87.5% of the shorter side (SimCLR CROP_PROPORTION).
IMAGENET_CROP_PROPORTION = 0.875

# Sub-seed slots of one view: each op owns one, whether or not it is switched on.
(
    _CROP,
    _FLIP,
    _JITTER_APPLY,
    _JITTER_ORDER,
    _BRIGHTNESS,
    _CONTRAST,
    _SATURATION,
    _HUE,
    _GRAYSCALE_APPLY,
    _BLUR_APPLY,
    _BLUR_SIGMA,
    _PERMUTATION_APPLY,
    _PERMUTATION_ORDER,
) = range(13)
_NUM_SUBSEEDS = 13

# Salt separating per-view augmentation seeds from other uses of the run seed.
_VIEW_SALT = 1


def _size_pair(size, name: str) -> tuple[int, int] | None:
    """None, or `size` as (height, width) of positive ints; ValueError otherwise."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair)
    ):
        raise ValueError(f"{name} must be None, a positive int or (height, width), got {size!r}")
    return int(pair[0]), int(pair[1])


def _check_range(values, name: str, low: float, high: float, low_open: bool = False) -> None:
    """`values` must be a pair lo <= hi inside [low, high] (or (low, high] if low_open)."""
    try:
        lo, hi = (float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of numbers, got {values!r}") from None
    lower_ok = lo > low if low_open else lo >= low
    if not (lower_ok and lo <= hi <= high):
        interval = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise ValueError(f"{name} must satisfy lo <= hi within {interval}, got {values!r}")


def _check_probability(p, name: str) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")


def _check_resize_method(method: str) -> None:
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize_method must be one of {RESIZE_METHODS}, got {method!r}")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """SimCLR augmentation of one view (paper section 2; SimCLR `preprocess_for_train`).

    - crop: random resized crop. The box covers a fraction `crop_area` of the image area and
      has aspect ratio (width / height) in `crop_ratio` times the output's aspect ratio
      (`tf.image.stateless_sample_distorted_bounding_box`, min_object_covered 0.1, 100
      attempts, whole image as fallback), then is resized to the output size.
    - flip: horizontal flip with probability 1/2.
    - color_jitter: SimCLR colour distortion. With probability `jitter_prob`: brightness
      (multiplicative factor in [max(0, 1 - 0.8s), 1 + 0.8s]), contrast [1 - 0.8s, 1 + 0.8s],
      saturation [1 - 0.8s, 1 + 0.8s] and hue (delta 0.2s) in a random order, clipping to
      [0, 1] after each (s = jitter_strength); then, with probability `grayscale_prob`,
      grayscale. Saturation, hue and grayscale need 3 channels and are skipped otherwise.
      color_jitter=False switches off both jitter and grayscale.
    - channel_permutation_prob: with this probability, the channels in a uniformly random
      order (not in SimCLR: a colour-destroying control; a permutation of RGB moves every
      hue to one of six others, whatever the jitter left).
    - blur: with probability `blur_prob`, separable Gaussian blur, sigma ~ U(0.1, 2.0),
      kernel 2 * (height // 20) + 1 (SimCLR's height // 10, made odd), zero padding.
    - output_size: None keeps the input size; an int or (height, width) resizes to it
      (with crop off, the whole image is resized).
    - resize_method: a `tf.image.resize` method; SimCLR uses bicubic, the RandBit colab
      bilinear.
    - extra_layers: callables (e.g. Keras preprocessing layers) applied in order to the
      [H, W, C] view after the built-in ops. Their randomness is their own: it is not
      derived from the pipeline seed.

    Raises ValueError for values outside their ranges.
    """

    crop: bool = True
    crop_area: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    color_jitter: bool = True
    jitter_strength: float = 0.5
    jitter_prob: float = 0.8
    grayscale_prob: float = 0.2
    channel_permutation_prob: float = 0.0
    blur: bool = False
    blur_prob: float = 0.5
    output_size: int | tuple[int, int] | None = None
    resize_method: str = "bicubic"
    extra_layers: tuple = ()

    def __post_init__(self):
        _check_range(self.crop_area, "crop_area", 0.0, 1.0, low_open=True)
        _check_range(self.crop_ratio, "crop_ratio", 0.0, float("inf"), low_open=True)
        strength = self.jitter_strength
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or strength < 0:
            raise ValueError(f"jitter_strength must be a number >= 0, got {strength!r}")
        _check_probability(self.jitter_prob, "jitter_prob")
        _check_probability(self.grayscale_prob, "grayscale_prob")
        _check_probability(self.channel_permutation_prob, "channel_permutation_prob")
        _check_probability(self.blur_prob, "blur_prob")
        _size_pair(self.output_size, "output_size")
        _check_resize_method(self.resize_method)
        if not isinstance(self.extra_layers, tuple) or not all(
            callable(layer) for layer in self.extra_layers
        ):
            raise ValueError(
                f"extra_layers must be a tuple of callables, got {self.extra_layers!r}"
            )


def cifar_augment(**overrides) -> AugmentConfig:
    """SimCLR CIFAR-10 augmentation: crop area 0.08-1, flip, jitter s=0.5 (p 0.8), grayscale
    p 0.2, no blur, output the input size (32 x 32). `overrides` replace fields."""
    return AugmentConfig(**overrides)


def imagenet_augment(**overrides) -> AugmentConfig:
    """SimCLR ImageNet augmentation: crop area 0.08-1 resized to 224 x 224, flip, jitter
    s=1.0 (p 0.8), grayscale p 0.2, Gaussian blur p 0.5. `overrides` replace fields."""
    return AugmentConfig(**{"jitter_strength": 1.0, "blur": True, "output_size": 224, **overrides})


def grey_shapes_augment(**overrides) -> AugmentConfig:
    """The grey shapes' augmentation (DigitOnImages' before 2026-12-06): crop area 0.3-1,
    flip, colour jitter s=0.5 (p 0.8; on grey images brightness and contrast, so that the
    grey levels cannot identify an image: with crop-only views NT-Xent learned them and probed
    the shape at 0.678 against 0.903, seed 0), bilinear resize back to the input size.
    `overrides` replace fields."""
    return AugmentConfig(
        **{
            "crop_area": (0.3, 1.0),
            "jitter_strength": 0.5,
            "resize_method": "bilinear",
            **overrides,
        }
    )


def crop_augment(**overrides) -> AugmentConfig:
    """Crop-only augmentation, the RandBit colab's (MNIST): crop area 0.5-1, ratio 3/4-4/3,
    bilinear resize back to the input size; no flip, no colour ops. Used wherever colour or
    orientation would change what is studied (digits, appended bit planes). `overrides`
    replace fields."""
    return AugmentConfig(
        **{
            "crop_area": (0.5, 1.0),
            "flip": False,
            "color_jitter": False,
            "resize_method": "bilinear",
            **overrides,
        }
    )


def example_seed(
    seed: int, index: tf.Tensor | int, epoch: tf.Tensor | int, view: tf.Tensor | int
) -> tf.Tensor:
    """The stateless seed (int64 [2]) of one view: fold index, epoch, view into (seed, 1).

    Uses `tf.random.experimental.stateless_fold_in` (a Philox hash), so distinct
    (seed, index, epoch, view) give unrelated random streams.
    """
    key = tf.stack([tf.cast(seed, tf.int64), tf.constant(_VIEW_SALT, tf.int64)])
    for data in (index, epoch, view):
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(data, tf.int64))
    return key


def _static_or_dynamic_hw(image: tf.Tensor) -> tuple:
    """(height, width) as Python ints where static, else scalar tensors."""
    dynamic = tf.shape(image)
    return tuple(image.shape[i] if image.shape[i] is not None else dynamic[i] for i in (0, 1))


def _check_image(image: tf.Tensor) -> int:
    """Checks a single image [H, W, C] with a static channel count; returns C."""
    if image.shape.rank != 3 or image.shape[-1] is None:
        raise ValueError(f"expected one image [H, W, C] with a known C, got shape {image.shape}")
    return image.shape[-1]


def _resize(image: tf.Tensor, size, method: str, antialias: bool = False) -> tf.Tensor:
    return tf.image.resize(image, size, method=method, antialias=antialias)


def _random_resized_crop(
    image: tf.Tensor, size: tuple, config: AugmentConfig, seed: tf.Tensor
) -> tf.Tensor:
    """A random box (area and aspect ratio from config) cropped out and resized to `size`."""
    height, width = size
    # Aspect-ratio bounds are op attributes, so they must be Python floats: scale them by
    # the output aspect when it is static (always with output_size or a fixed input size).
    aspect = width / height if isinstance(height, int) and isinstance(width, int) else 1.0
    begin, box_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4]),
        seed=seed,
        min_object_covered=0.1,
        aspect_ratio_range=[config.crop_ratio[0] * aspect, config.crop_ratio[1] * aspect],
        area_range=list(config.crop_area),
        max_attempts=100,
        use_image_if_no_bounding_boxes=True,
    )
    offset_y, offset_x, _ = tf.unstack(begin)
    crop_height, crop_width, _ = tf.unstack(box_size)
    crop = tf.image.crop_to_bounding_box(image, offset_y, offset_x, crop_height, crop_width)
    return _resize(crop, [height, width], config.resize_method)


def _maybe_apply(
    fn: Callable[[tf.Tensor], tf.Tensor], image: tf.Tensor, p: float, seed: tf.Tensor
) -> tf.Tensor:
    """fn(image) with probability p (stateless coin from `seed`), else image."""
    if p <= 0.0:
        return image
    if p >= 1.0:
        return fn(image)
    coin = tf.random.stateless_uniform([], seed=seed) < p
    return tf.cond(coin, lambda: fn(image), lambda: image)


def _color_jitter(image: tf.Tensor, strength: float, seeds: tf.Tensor) -> tf.Tensor:
    """SimCLR v2 colour jitter: the four ops in a random order, clipping after each."""
    delta = 0.8 * strength
    lower = max(0.0, 1.0 - delta)  # contrast/saturation factors must stay >= 0
    rgb = image.shape[-1] == 3

    def brightness(x):
        factor = tf.random.stateless_uniform(
            [], seed=seeds[_BRIGHTNESS], minval=lower, maxval=1.0 + delta
        )
        return x * factor

    def contrast(x):
        return tf.image.stateless_random_contrast(x, lower, 1.0 + delta, seed=seeds[_CONTRAST])

    def saturation(x):
        if not rgb:
            return x
        return tf.image.stateless_random_saturation(x, lower, 1.0 + delta, seed=seeds[_SATURATION])

    def hue(x):
        if not rgb:
            return x
        # tf.image limits the hue delta to 0.5 (half a turn of the colour wheel).
        return tf.image.stateless_random_hue(x, min(0.2 * strength, 0.5), seed=seeds[_HUE])

    ops = (brightness, contrast, saturation, hue)
    order = tf.argsort(tf.random.stateless_uniform([len(ops)], seed=seeds[_JITTER_ORDER]))
    for position in range(len(ops)):
        branches = [functools.partial(op, image) for op in ops]
        image = tf.clip_by_value(tf.switch_case(order[position], branches), 0.0, 1.0)
    return image


def _grayscale(image: tf.Tensor) -> tf.Tensor:
    return tf.tile(tf.image.rgb_to_grayscale(image), [1, 1, 3])


def _permute_channels(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    order = tf.argsort(tf.random.stateless_uniform([image.shape[-1]], seed=seed))
    return tf.gather(image, order, axis=-1)


def gaussian_blur(image: tf.Tensor, sigma: tf.Tensor | float, radius: tf.Tensor | int) -> tf.Tensor:
    """Separable Gaussian blur of an image [H, W, C] (zero 'SAME' padding, as SimCLR).

    Kernel k(x) = exp(-x^2 / (2 sigma^2)) / sum, x in -radius..radius, applied along the
    height then the width.
    """
    channels = _check_image(image)
    x = tf.cast(tf.range(-radius, radius + 1), tf.float32)
    kernel = tf.exp(-tf.square(x) / (2.0 * tf.square(tf.cast(sigma, tf.float32))))
    kernel /= tf.reduce_sum(kernel)
    size = 2 * radius + 1
    vertical = tf.tile(tf.reshape(kernel, [size, 1, 1, 1]), [1, 1, channels, 1])
    horizontal = tf.tile(tf.reshape(kernel, [1, size, 1, 1]), [1, 1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(image[None], vertical, [1, 1, 1, 1], "SAME")
    blurred = tf.nn.depthwise_conv2d(blurred, horizontal, [1, 1, 1, 1], "SAME")
    return blurred[0]


def augment_image(image: tf.Tensor, config: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    """One augmented view of `image` (float32 [H, W, C] in [0, 1]) under `config`.

    A pure function of (image, config, seed): seed is an int [2] tensor (see
    `example_seed`). Returns float32 [h, w, C] (h, w = output_size or H, W), in [0, 1]
    unless an extra layer leaves that range; with every op off and no output_size, returns
    the image unchanged. Works eagerly, in `tf.function` and in `tf.data` map functions.
    """
    if not isinstance(config, AugmentConfig):
        raise ValueError(f"config must be an AugmentConfig, got {type(config).__name__}")
    image = tf.convert_to_tensor(image, tf.float32)
    channels = _check_image(image)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), _NUM_SUBSEEDS)
    output = _size_pair(config.output_size, "output_size")
    size = output if output is not None else _static_or_dynamic_hw(image)

    if config.crop:
        image = _random_resized_crop(image, size, config, seeds[_CROP])
    elif output is not None:
        image = _resize(image, output, config.resize_method)
    if config.flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=seeds[_FLIP])
    if config.color_jitter:
        if config.jitter_strength > 0:
            image = _maybe_apply(
                lambda x: _color_jitter(x, config.jitter_strength, seeds),
                image,
                config.jitter_prob,
                seeds[_JITTER_APPLY],
            )
        if channels == 3:
            image = _maybe_apply(_grayscale, image, config.grayscale_prob, seeds[_GRAYSCALE_APPLY])
    image = _maybe_apply(
        lambda x: _permute_channels(x, seeds[_PERMUTATION_ORDER]),
        image,
        config.channel_permutation_prob,
        seeds[_PERMUTATION_APPLY],
    )
    if config.blur:
        radius = size[0] // 20  # SimCLR: kernel_size = height // 10, radius = kernel_size // 2
        if not isinstance(radius, int) or radius > 0:
            sigma = tf.random.stateless_uniform([], seed=seeds[_BLUR_SIGMA], minval=0.1, maxval=2.0)
            image = _maybe_apply(
                lambda x: gaussian_blur(x, sigma, radius),
                image,
                config.blur_prob,
                seeds[_BLUR_APPLY],
            )
    image = tf.clip_by_value(image, 0.0, 1.0)
    for layer in config.extra_layers:
        image = layer(image)
    return image


def center_crop(
    image: tf.Tensor,
    output_size: int | tuple[int, int] | None = None,
    crop_proportion: float = 1.0,
    *,
    method: str = "bicubic",
    antialias: bool = False,
) -> tf.Tensor:
    """Central crop of an image [H, W, C] resized to `output_size` (SimCLR `center_crop`).

    The crop has the output's aspect ratio and keeps `crop_proportion` of the image along
    the less-cropped side: if a = w_out / h_out > W / H, crop (rint(p W / a), rint(p W)),
    else (rint(p H), rint(p H a)); offsets ((H - h_crop + 1) // 2, (W - w_crop + 1) // 2).
    output_size None keeps the input size. The result is clipped to [0, 1].
    """
    if not 0.0 < crop_proportion <= 1.0:
        raise ValueError(f"crop_proportion must be in (0, 1], got {crop_proportion!r}")
    _check_resize_method(method)
    image = tf.convert_to_tensor(image, tf.float32)
    _check_image(image)
    out = _size_pair(output_size, "output_size")
    height, width = _static_or_dynamic_hw(image)
    if out is None:
        if not (isinstance(height, int) and isinstance(width, int)):
            raise ValueError("images of unknown size need an output_size")
        out = (height, width)
    aspect = out[1] / out[0]
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    wider_request = aspect > w / h
    crop_h = tf.cast(
        tf.math.rint(tf.where(wider_request, crop_proportion * w / aspect, crop_proportion * h)),
        tf.int32,
    )
    crop_w = tf.cast(
        tf.math.rint(tf.where(wider_request, crop_proportion * w, crop_proportion * h * aspect)),
        tf.int32,
    )
    offset_h = (tf.cast(height, tf.int32) - crop_h + 1) // 2
    offset_w = (tf.cast(width, tf.int32) - crop_w + 1) // 2
    crop = tf.image.crop_to_bounding_box(image, offset_h, offset_w, crop_h, crop_w)
    return tf.clip_by_value(_resize(crop, out, method, antialias), 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class EvalPreprocess:
    """Evaluation preprocessing of one image: `center_crop(image, output_size,
    crop_proportion, method=resize_method)`; the identity when output_size is None and
    crop_proportion is 1 (small images: SimCLR does no eval crop on CIFAR).

    Raises ValueError for a crop_proportion outside (0, 1] or a bad size/method.
    """

    output_size: int | tuple[int, int] | None = None
    crop_proportion: float = 1.0
    resize_method: str = "bicubic"

    def __post_init__(self):
        if not 0.0 < self.crop_proportion <= 1.0:
            raise ValueError(f"crop_proportion must be in (0, 1], got {self.crop_proportion!r}")
        _size_pair(self.output_size, "output_size")
        _check_resize_method(self.resize_method)

    def __call__(self, image: tf.Tensor) -> tf.Tensor:
        image = tf.convert_to_tensor(image, tf.float32)
        if self.output_size is None and self.crop_proportion == 1.0:
            return image
        return center_crop(image, self.output_size, self.crop_proportion, method=self.resize_method)


def imagenet_eval_preprocess(output_size: int | tuple[int, int] = 224) -> EvalPreprocess:
    """SimCLR ImageNet evaluation: central crop of 87.5%, bicubic resize to 224 x 224."""
    return EvalPreprocess(output_size, IMAGENET_CROP_PROPORTION)
