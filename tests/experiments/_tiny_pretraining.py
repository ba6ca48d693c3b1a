"""Flags for a 2-step `cifar`/`imagenet` run on 32 tiny offline images with ConvN: what the
entry-point tests need to exercise a whole run in seconds."""

TINY_PRETRAINING = [
    "--dataset=shapes",
    "--num_train=32",
    "--num_test=16",
    "--batch_size=8",
    "--epochs=0",
    "--warmup_epochs=0",
    "--train_steps=2",
    "--steps_per_loop=2",
    "--encoder=convn",
    "--linear_epochs=1",
    "--knn_k=5",
    "--eval_batch_size=16",
    "--verbose=0",
]
