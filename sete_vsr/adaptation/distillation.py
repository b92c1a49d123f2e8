"""Efficient adaptation via test-time distillation (paper 004, Sec. 3.6, Algorithm 2).

A large teacher restores the clip once; its frames ``{Y_t}`` are the source of the pseudo
pairs (lines 2-5, the same as Algorithm 1) on which a small student ``g_phi`` is tuned
(lines 6-7); the student then restores the clip (line 9). The teacher is never trained,
so it may be any method, trainable or not. In the paper EDVR-L -> EDVR-S halves the
adaptation time of EDVR-L -> EDVR-L and still beats EDVR-L (Table 3).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from .self_supervised import AdaptationConfig, AdaptationResult, as_method, run_algorithm


def distill(
    teacher,
    student,
    lr_frames: np.ndarray,
    config: AdaptationConfig | None = None,
    progress: bool = True,
    **overrides,
) -> AdaptationResult:
    """Algorithm 2 on one clip: the student adapts to the teacher's initial restoration.

    The student is adapted in place.

    Args:
        teacher: any :class:`~sete_vsr.methods.VSRMethod` (it only restores the clip once).
        student: a baseline method or bare trainable network (see
            :func:`~sete_vsr.adaptation.self_supervised.as_method`).
        lr_frames: ``(T, H, W, 3)`` uint8 RGB low-resolution clip ``{X_t}``.
        config: settings; ``overrides`` replace its fields.
        progress: show progress bars.

    Returns:
        ``initial_frames`` are the teacher's ``{Y_t}``; ``frames`` and ``method`` are the
        adapted student's; ``seconds["initial"]`` is the teacher's pass.
    """
    config = replace(config or AdaptationConfig(), **overrides)
    student = as_method(student)
    student.progress = teacher.progress = progress
    start = time.perf_counter()
    restored = teacher(lr_frames)  # {Y_t} by the teacher f_theta
    teacher_seconds = round(time.perf_counter() - start, 3)
    result = run_algorithm(student, lr_frames, restored, config, progress)
    result.seconds = {"initial": teacher_seconds, **result.seconds}
    return result


__all__ = ["distill"]
