"""cl_properties: Intriguing Properties of Contrastive Losses, in Keras 3 / TensorFlow."""

__version__ = "0.1.0"
