"""Data: sources in the shared record format, the dataset registry, SimCLR augmentations,
tf.data pipelines.

One import block per module; `__all__` lists the public names.
"""

from cl_properties.data.augment import (
    AugmentConfig,
    EvalPreprocess,
    augment_image,
    center_crop,
    cifar_augment,
    crop_augment,
    example_seed,
    gaussian_blur,
    grey_shapes_augment,
    imagenet_augment,
    imagenet_eval_preprocess,
)
from cl_properties.data.digit_on_images import (
    DigitOnImagesArrays,
    digit_on_images_map,
    grid_offsets,
    make_digit_on_images,
    pool_indices,
)
from cl_properties.data.digits import (
    DigitArrays,
    digit_pool,
    load_digits,
    resize_digits,
)
from cl_properties.data.multidigits import (
    TWO_DIGIT_LAYOUTS,
    MultiDigitsArrays,
    check_two_digits_fit,
    make_multidigits,
    make_two_digits,
)
from cl_properties.data.pipeline import (
    ViewTransform,
    eval_dataset,
    two_view_dataset,
    view_shape,
)
from cl_properties.data.randbit import MAX_BITS, RandBit, image_code
from cl_properties.data.registry import (
    DATASETS,
    LoadOptions,
    RegisteredDataset,
    dataset_classes,
    default_splits,
    load_dataset,
    register_dataset,
)
from cl_properties.data.shapes import GREY_SHAPES, SHAPE_NAMES, ShapesArrays, make_shapes
from cl_properties.data.sources import (
    SOURCE_NAMES,
    DataNotFoundError,
    load_source,
    source_arrays,
    source_from_arrays,
)

__all__ = [
    "AugmentConfig",
    "DATASETS",
    "DataNotFoundError",
    "DigitArrays",
    "DigitOnImagesArrays",
    "EvalPreprocess",
    "GREY_SHAPES",
    "LoadOptions",
    "MAX_BITS",
    "MultiDigitsArrays",
    "RandBit",
    "RegisteredDataset",
    "SHAPE_NAMES",
    "SOURCE_NAMES",
    "ShapesArrays",
    "TWO_DIGIT_LAYOUTS",
    "ViewTransform",
    "augment_image",
    "center_crop",
    "check_two_digits_fit",
    "cifar_augment",
    "crop_augment",
    "dataset_classes",
    "default_splits",
    "digit_on_images_map",
    "digit_pool",
    "eval_dataset",
    "example_seed",
    "gaussian_blur",
    "grey_shapes_augment",
    "grid_offsets",
    "image_code",
    "imagenet_augment",
    "imagenet_eval_preprocess",
    "load_dataset",
    "load_digits",
    "load_source",
    "make_digit_on_images",
    "make_multidigits",
    "make_shapes",
    "make_two_digits",
    "pool_indices",
    "register_dataset",
    "resize_digits",
    "source_arrays",
    "source_from_arrays",
    "two_view_dataset",
    "view_shape",
]
