"""RandBit (paper section 4): extra constant channels holding a per-image random code.

Each image gets a `bits`-bit code; bit j becomes a constant H x W plane appended after the
image channels of each view, after augmentation (the planes are never augmented). In the
"shared" mode the code is a seeded hash of the original image, so both views, every epoch
and evaluation see the same code: an easy feature shared by the two views that competes with
(and, with enough bits, suppresses) the digit features. The "per_view" mode is the control:
the two views carry codes that are unrelated, so the bits cannot help the contrastive task.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from cl_properties.data.hashing import fingerprint_bits, fingerprint_rows, int64_bytes

MAX_BITS = 30
MODES = ("shared", "per_view")

# Salts of the per_view mode: each view (and evaluation) hashes with its own salt.
_SALT_SINGLE, _SALT_VIEW1, _SALT_VIEW2 = 0, 1, 2


def quantize(image: tf.Tensor) -> tf.Tensor:
    """uint8 bytes of an image in [0, 1]: round(clip(x, 0, 1) * 255), flattened to [H*W*C]."""
    image = tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 1.0)
    return tf.reshape(tf.cast(tf.round(image * 255.0), tf.uint8), [-1])


def image_code(image: tf.Tensor, bits: int, seed: int = 0) -> tf.Tensor:
    """The RandBit code of one image: int32 [bits] of 0/1.

    code_j = bit j of Fingerprint64(quantize(image) || le_bytes(seed)), j < bits <= 30.
    Quantizing to 8 bits first makes the code insensitive to float round-off.
    """
    _check_bits(bits)
    return fingerprint_bits(fingerprint_rows(quantize(image)[None, :], seed), bits)[0]


def bit_planes(code: tf.Tensor, height: tf.Tensor | int, width: tf.Tensor | int) -> tf.Tensor:
    """Broadcast a code [bits] to constant planes float32 [height, width, bits]."""
    code = tf.cast(code, tf.float32)
    return tf.tile(code[None, None, :], tf.stack([height, width, 1]))


def _check_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 0 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an int in 0..{MAX_BITS}, got {bits!r}")


@dataclasses.dataclass(frozen=True)
class RandBit:
    """A ViewTransform appending `bits` constant 0/1 channels to every view (paper section 4).

    mode="shared" (the experiment): the code is `image_code(record["image"], bits, seed)`, a
    hash of the ORIGINAL (un-augmented) record image, so it is identical in both views, in
    every epoch and in `single` (evaluation), and differs between images like independent
    fair coins (64-bit FarmHash fingerprint; at most 30 of its bits are used).

    mode="per_view" (the control): each view's code is drawn by a stateless hash of that
    view's augmented pixels, the record index, the seed and a per-view salt (1 for view 1, 2
    for view 2, 0 for `single`). The different salts make the two codes of a pair unrelated
    even when the two views happen to be identical; the augmented pixels change with each
    epoch's fresh crops, so the codes mostly do too (a crop landing on the same box repeats
    its code: 2.7% of view-1 codes between two epochs, 300 digits at 14 px, crop_augment).
    Being stateless (no counter variable), this works unchanged in graph mode, parallel
    `map` and distributed input.

    Views must be single images [H, W, C]; the output is [H, W, C + bits]. bits=0 is the
    identity. Raises ValueError for bits outside 0..30 or an unknown mode.
    """

    bits: int
    mode: str = "shared"
    seed: int = 0

    def __post_init__(self):
        _check_bits(self.bits)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")

    def channels_added(self) -> int:
        """Number of channels appended to each view: `bits`."""
        return self.bits

    def views(
        self, record: dict, view1: tf.Tensor, view2: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Append the bit planes to both (augmented) views of `record`."""
        if self.bits == 0:
            return view1, view2
        if self.mode == "shared":
            code = image_code(record["image"], self.bits, self.seed)
            return self._append(view1, code), self._append(view2, code)
        return (
            self._append(view1, self._view_code(record, view1, _SALT_VIEW1)),
            self._append(view2, self._view_code(record, view2, _SALT_VIEW2)),
        )

    def single(self, record: dict, image: tf.Tensor) -> tf.Tensor:
        """Append the bit planes to one image (evaluation); shared mode: the same code as views."""
        if self.bits == 0:
            return image
        if self.mode == "shared":
            return self._append(image, image_code(record["image"], self.bits, self.seed))
        return self._append(image, self._view_code(record, image, _SALT_SINGLE))

    def _view_code(self, record: dict, view: tf.Tensor, salt: int) -> tf.Tensor:
        # Row = view bytes || index bytes || salt byte; the seed is appended by fingerprint_rows.
        row = tf.concat(
            [quantize(view), int64_bytes(record["index"]), tf.constant([salt], tf.uint8)], axis=0
        )
        return fingerprint_bits(fingerprint_rows(row[None, :], self.seed), self.bits)[0]

    def _append(self, view: tf.Tensor, code: tf.Tensor) -> tf.Tensor:
        view = tf.convert_to_tensor(view, tf.float32)
        if view.shape.rank is not None and view.shape.rank != 3:
            raise ValueError(f"RandBit expects one image [H, W, C] per view, got {view.shape}")
        shape = tf.shape(view)
        return tf.concat([view, bit_planes(code, shape[0], shape[1])], axis=-1)
