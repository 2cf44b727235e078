"""Knowledge distillation from a ferfast ONNX teacher, and the weight EMA used with it.

The teacher is any model that follows the ferfast contract (input gray/255, ``probs`` out in
EMOTIONS order), e.g. the bundled ``ferfast_fp32.onnx``, or an ensemble of such models (their
probabilities averaged); it runs in ONNX Runtime on exactly the augmented batch the student
sees. Its targets come from Training images only, so distilling adds no information from
PublicTest beyond what already selected the teacher.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ferfast.contract import DEFAULT_BIAS, DEFAULT_SCALE
from ferfast.labels import EMOTIONS
from ferfast.ort import OrtRunner


class Teacher:
    """Frozen ferfast ONNX model(s): ``teacher(x) -> (N,7) log of the (mean) probabilities``.

    ``paths``: one model, or several (a list, or one string with comma-separated items); an
    item may also be a teacher artifact folder, a folder of them, or an artifact name
    (:func:`training.teacher.resolve_teachers`). Each runs in a
    :class:`ferfast.ort.OrtRunner` (the engine's own contract checks) with idle spinning
    off, so its worker threads leave the cores to the student between batches.
    """

    def __init__(self, paths: str | Path | list[str | Path], threads: int = 0) -> None:
        from .teacher import resolve_teachers

        paths = resolve_teachers(paths)
        if not paths:
            raise ValueError("no teacher model given")
        self.runners = [OrtRunner(p, threads=threads or None, spin=False) for p in paths]
        for r in self.runners:
            if r.emotions != EMOTIONS:
                raise ValueError(f"{r.path}: teacher classes {r.emotions} are not {EMOTIONS}")
            if not np.isclose(r.input_scale, DEFAULT_SCALE) or r.input_bias != DEFAULT_BIAS:
                raise ValueError(
                    f"{r.path}: teacher input must be gray/255 "
                    f"(scale {r.input_scale}, bias {r.input_bias})"
                )

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N,1,48,48) float in [0,1] -> teacher log-probabilities (N,7), float32."""
        arr = np.ascontiguousarray(x.detach().float().cpu().numpy(), dtype=np.float32)
        probs = np.mean([r.run(arr) for r in self.runners], axis=0)
        return torch.from_numpy(np.log(np.clip(probs, 1e-8, 1.0)).astype(np.float32))


def kd_loss(student_logits: torch.Tensor, teacher_logp: torch.Tensor, temp: float) -> torch.Tensor:
    """Hinton's distillation term: T² · KL(teacher_T ‖ student_T), batch mean."""
    t = F.log_softmax(teacher_logp / temp, 1)
    s = F.log_softmax(student_logits.float() / temp, 1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temp * temp


def make_ema(net: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``net``'s weights and BatchNorm statistics."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
