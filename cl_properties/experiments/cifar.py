r"""Contrastive pretraining on CIFAR-scale images (paper Figure 1, CIFAR-10 column).

    python -m cl_properties.experiments.cifar \
        --flagfile=experiments/figure1/cifar10_nt_xent_head2.flags
    python -m cl_properties.experiments.cifar --flagfile=experiments/smoke/cifar_smoke.flags

Defaults: CIFAR-10 from TFDS (--data_dir; never downloaded), ResNet-18 with the CIFAR stem,
SimCLR's CIFAR augmentation (jitter s 0.5, no blur), LARS with lr 0.2 * sqrt(batch 128),
10 warmup epochs and cosine decay, NT-Xent tau 0.2, head output 64 (paper-notes section 2;
epoch counts unverified). Writes results.json / results.csv to --output_dir (alias
--model_dir); see `cl_properties.experiments.pretraining`.
"""

from cl_properties.experiments import pretraining

EXPERIMENT = pretraining.Experiment(
    name="cifar",
    defaults={
        "dataset": "cifar10",
        "encoder": "resnet18",
        "head_output_dim": 64,
        "loss": "nt_xent",
        "optimizer": "lars",
        "learning_rate": 0.2,
        "lr_scaling": "sqrt",
        "weight_decay": 1e-6,
        "batch_size": 128,
        "epochs": 1000.0,
        "warmup_epochs": 10.0,
        "steps_per_loop": 390,  # about one epoch of CIFAR-10 at batch 128
        "global_bn": True,
        "image_size": None,
        "jitter_strength": 0.5,
        "blur": False,
        "eval_crop_proportion": 1.0,
        "linear_epochs": 100,
    },
    loss_presets={"nt_xent": {"temperature": 0.2}},
)


def main(argv: list[str]) -> None:
    pretraining.main(EXPERIMENT, argv)


if __name__ == "__main__":
    pretraining.launch(EXPERIMENT)
