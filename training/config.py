"""The recipe of a training run: :class:`TrainConfig`, stored in every checkpoint; the
``training.train`` flags mirror its fields."""

from __future__ import annotations

from dataclasses import dataclass

from .data import VAL_FRACTION
from .paths import CACHE, FER2013, RUNS


@dataclass
class TrainConfig:
    """Everything that defines a run (stored in every checkpoint)."""

    out: str = str(RUNS / "main")
    data: str = str(FER2013)  # FER2013 folder or CSV
    cache: str = str(CACHE)
    arch: str = "a3"
    strategy: str = "sqrt"
    epochs: int = 60
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd (nesterov) | adamw
    lr: float = 0.05
    weight_decay: float = 5e-4
    warmup_epochs: float = 2.0
    label_smoothing: float = 0.1
    focal_gamma: float = 2.0
    dropout: float = 0.3
    aug: bool = True
    seed: int = 0
    threads: int = 0  # 0: leave torch's default
    bf16: bool = True
    channels_last: bool = True
    patience: int = 0  # early stopping after this many epochs without improvement (0: off)
    select: str = "mean"  # selection score: acc | macro_f1 | mean (of the two)
    # held-out share of Training that selects the checkpoint (data.validation_mask); 0: none,
    # train on all of Training and select on PublicTest (the rule before the split existed)
    val_fraction: float = VAL_FRACTION
    limit_train: int = 0  # use a random subset of Training (tests / quick runs)
    limit_eval: int = 0  # ... and of the validation split and PublicTest
    mixup: float = 0.0  # mixup Beta(alpha, alpha) per batch (0: off)
    cutmix: float = 0.0  # CutMix Beta(alpha, alpha) per batch (0: off; with mixup: one of them)
    erase: float = 0.5  # probability of one randomly erased rectangle per face
    device: str = "cpu"  # cpu | cuda (bf16 autocast on either)
    progress: bool = True
    # start from these weights instead of random init: a checkpoint's best, or a ferfast fp32 ONNX
    # of the same arch (its folded BatchNorm given back from Training statistics)
    init_from: str = ""
    # torchvision-format ImageNet state dict for --arch vgg16 / resnet50 (imagenet.py): the
    # features load, adapted to gray input; the head is new
    init_weights: str = ""
    steps_per_epoch: int = 0  # fixed optimizer steps per epoch (0: one pass over the train set)
    stop_after: int = 0  # end this invocation after N epochs (time slicing; resume later)
    # end this invocation before an epoch that would end later than this many seconds after it
    # started, judged by the mean epoch so far (a fixed wall-clock budget; resume later)
    time_limit: float = 0.0
    # distil from ferfast ONNX models or teacher artifacts (a folder, a name in training/teachers,
    # or training/teachers for all of them); a,b,... averages them; "" = off
    teacher: str = ""
    distill_alpha: float = 0.5  # loss = (1 - alpha) * strategy loss + alpha * KD term
    distill_temp: float = 3.0  # softmax temperature of the KD term
    ema: float = 0.0  # per-step EMA decay of the weights (e.g. 0.999); evaluated and kept; 0 = off
