"""Data: sources in the shared record format, SimCLR augmentations, tf.data pipelines.

One import block per module; each module's public names are listed here.
"""
from cl_properties.data.augment import (
    AugmentConfig,
    EvalPreprocess,
    augment_image,
    center_crop,
    cifar_augment,
    example_seed,
    gaussian_blur,
    imagenet_augment,
    imagenet_eval_preprocess,
    randbit_augment,
)
from cl_properties.data.pipeline import (
    ViewTransform,
    distributed_dataset,
    eval_dataset,
    two_view_dataset,
)
from cl_properties.data.sources import (
    SOURCE_NAMES,
    DataNotFoundError,
    load_source,
    source_from_arrays,
)
from cl_properties.data.digit_on_images import (
    DigitOnImagesArrays,
    digit_on_images_map,
    grid_offsets,
    make_digit_on_images,
    pool_indices,
)
from cl_properties.data.digits import DigitArrays, digit_pool, load_digits, load_mnist, resize_digits
from cl_properties.data.multidigits import MultiDigitsArrays, make_multidigits, make_two_digits
from cl_properties.data.randbit import MAX_BITS, RandBit, image_code
from cl_properties.data.shapes import SHAPE_NAMES, ShapesArrays, make_shapes
