"""Projection head g(h) placed between the representation h and the contrastive loss."""

from __future__ import annotations

import keras

from cl_properties.models.blocks import (
    SIMCLR_BN_EPSILON,
    SIMCLR_BN_MOMENTUM,
    batch_norm,
    check_bn_args,
)


def _check_positive_int(value, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")


@keras.saving.register_keras_serializable(package="cl_properties")
class ProjectionHead(keras.layers.Layer):
    """MLP projection head with `depth` layers (SimCLR's nonlinear head).

    - depth 0: identity, g(h) = h (output_dim and hidden_dim are unused);
    - depth 1: linear, g(h) = BN_nc(h W);
    - depth N: N - 1 hidden layers a_j = ReLU(BN(a_{j-1} W_j)) of width `hidden_dim`, then
      g = BN_nc(a_{N-1} W_N) of width `output_dim`.

    Dense layers have no bias (BN follows); BN_nc is BN without beta (center=False), as
    SimCLR's last layer; with `final_bn=False` the last layer is a plain bias-free Dense (the
    RandBit colab's head). `hidden_dim=None` uses the input dimension (SimCLR's choice).
    Dense kernels start from N(0, 0.01^2) (SimCLR's LinearLayer).

    `call(x, return_all=True)` returns the list [x, a_1, ..., a_{N-1}, g] of length depth + 1
    (index i = output of layer i; SimCLR's `ft_proj_selector`), otherwise g alone.
    """

    def __init__(
        self,
        depth: int = 2,
        hidden_dim: int | None = None,
        output_dim: int = 128,
        *,
        final_bn: bool = True,
        sync_bn: bool = False,
        bn_momentum: float = SIMCLR_BN_MOMENTUM,
        bn_epsilon: float = SIMCLR_BN_EPSILON,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"depth must be an int >= 0, got {depth!r}")
        _check_positive_int(output_dim, "output_dim")
        if hidden_dim is not None:
            _check_positive_int(hidden_dim, "hidden_dim")
        check_bn_args(bn_momentum, bn_epsilon)
        self.depth = depth
        self.hidden_dim = hidden_dim
        self.output_dim = output_dim
        self.final_bn = final_bn
        self.sync_bn = sync_bn
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.dense_layers: list[keras.layers.Dense] = []
        self.bn_layers: list[keras.layers.BatchNormalization] = []

    def build(self, input_shape):
        # Sublayers are created here because hidden_dim=None means "the input dimension".
        if self.built:  # callers (e.g. a model wrapping a used head) may build it again
            return
        hidden = self.hidden_dim or int(input_shape[-1])
        for j in range(1, self.depth + 1):
            last = j == self.depth
            self.dense_layers.append(
                keras.layers.Dense(
                    self.output_dim if last else hidden,
                    use_bias=False,
                    kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                    name=f"dense{j}",
                )
            )
            if not last or self.final_bn:
                self.bn_layers.append(
                    batch_norm(
                        name=f"bn{j}",
                        sync=self.sync_bn,
                        momentum=self.bn_momentum,
                        epsilon=self.bn_epsilon,
                        center=not last,
                    )
                )
        shape = tuple(input_shape)
        for j, dense in enumerate(self.dense_layers):
            dense.build(shape)
            shape = dense.compute_output_shape(shape)
            if j < len(self.bn_layers):
                self.bn_layers[j].build(shape)

    def call(self, inputs, training=None, return_all: bool = False):
        outputs = [inputs]
        x = inputs
        for j, dense in enumerate(self.dense_layers):
            x = dense(x)
            if j < len(self.bn_layers):
                x = self.bn_layers[j](x, training=training)
            if j < self.depth - 1:
                x = keras.ops.relu(x)
            outputs.append(x)
        return outputs if return_all else x

    def get_config(self):
        config = super().get_config()
        config.update(
            depth=self.depth,
            hidden_dim=self.hidden_dim,
            output_dim=self.output_dim,
            final_bn=self.final_bn,
            sync_bn=self.sync_bn,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
        )
        return config
