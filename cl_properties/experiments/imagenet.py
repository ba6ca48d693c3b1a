r"""Contrastive pretraining on ImageNet-scale images (paper Figure 1, ImageNet column).

    python -m cl_properties.experiments.imagenet \
        --flagfile=experiments/figure1/imagenet_nt_xent_head2.flags --data_dir=/path/to/tfds
    python -m cl_properties.experiments.imagenet --flagfile=experiments/smoke/imagenet_smoke.flags

Defaults: ImageNet (TFDS imagenet2012, prepared under --data_dir from the manually
downloaded archives), ResNet-50, 224 x 224 views with SimCLR's ImageNet augmentation
(jitter s 1.0, blur p 0.5) and evaluation crop (87.5%), LARS with lr 0.075 * sqrt(batch
1024), 10 warmup epochs and cosine decay, NT-Xent tau 0.1, head output 128 (paper-notes
section 2; epoch counts unverified). Writes results.json / results.csv to --output_dir
(alias --model_dir); see `cl_properties.experiments.pretraining`.
"""

from cl_properties.experiments import pretraining

EXPERIMENT = pretraining.Experiment(
    name="imagenet",
    defaults={
        "dataset": "imagenet2012",
        "encoder": "resnet50",
        "head_output_dim": 128,
        "loss": "nt_xent",
        "optimizer": "lars",
        "learning_rate": 0.075,
        "lr_scaling": "sqrt",
        "weight_decay": 1e-6,
        "batch_size": 1024,
        "epochs": 100.0,
        "warmup_epochs": 10.0,
        "steps_per_loop": 1251,  # about one epoch of ImageNet at batch 1024
        "global_bn": True,
        "image_size": 224,
        "jitter_strength": 1.0,
        "blur": True,
        "eval_crop_proportion": 0.875,
        "linear_epochs": 90,
    },
)


def main(argv: list[str]) -> None:
    pretraining.main(EXPERIMENT, argv)


if __name__ == "__main__":
    pretraining.launch(EXPERIMENT)
