"""Pluggable optical-flow backends for the temporal metrics.

A backend is a callable ``flow(src, dst) -> (N, H, W, 2) float32`` taking two
``(N, H, W, 3)`` uint8 RGB batches and returning, for each pixel ``x`` of
``src``, the displacement ``(dx, dy)`` in pixels such that ``src(x) ~ dst(x + flow(x))``.

A backend may set ``flow.description`` (weights file, iterations...), which
goes into the metric's implementation string.

Backends (the name goes into the metric's name and label, e.g. ``ewarp_dis``,
``E_warp (DIS)``):

* ``dis``: OpenCV DIS, preset MEDIUM, on grayscale; no weights (default);
* ``farneback``: OpenCV Farneback with TecoGAN's parameters ``(0.5, 3, 15, 3, 5, 1.2, 0)``;
* ``raft``: torchvision ``raft_large`` with the FlyingChairs+FlyingThings weights, the E*_warp
  protocol's ``raft-things.pth`` (PROTOCOLS.md 4.2): ``raft_large_C_T_V1-22a6c225.pth`` (ported
  from the original raft-things checkpoint) or else ``raft_large_C_T_V2-1bb1363a.pth``
  (torchvision's retraining on the same data), found offline; inputs in [-1, 1], padded to a
  multiple of 8 as RAFT's ``InputPadder`` (replicate, split evenly between the two sides),
  20 iterations, last estimate. The file used is named in the metric's implementation;
* ``spynet``: SPyNet from the BasicVSR checkpoint (``BasicVSR_Vimeo90K_BIx4.pth`` found offline), through
  ``sete_vsr.baselines.spynet.flow_backend``.

Others are added with :func:`register_flow_backend`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ...weight_dirs import find_weight

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

SPYNET_FILES = (
    "BasicVSR_Vimeo90K_BIx4.pth",
    "basicvsr/BasicVSR_Vimeo90K_BIx4.pth",
    "BasicVSR_Vimeo90K_BIx4-2a29695a.pth",
    "BasicVSR_REDS4-543c8261.pth",
)
# raft-things (C+T) only: the Sintel/KITTI/HD1K fine-tuned weights give other numbers
RAFT_FILES = ("raft_large_C_T_V1-22a6c225.pth", "raft_large_C_T_V2-1bb1363a.pth")
RAFT_ITERATIONS = 20  # PROTOCOLS.md 4.2: iters=20, test_mode=True


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def dis_backend(device: str = "cpu") -> FlowFn:
    """OpenCV DIS (MEDIUM preset) on grayscale frames."""
    import cv2

    del device
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def flow(src, dst):
        return np.stack([dis.calc(_gray(a), _gray(b), None) for a, b in zip(src, dst)]).astype(np.float32)

    flow.description = f"OpenCV {cv2.__version__} DIS, preset MEDIUM, on RGB2GRAY uint8 (no weights)"
    return flow


def farneback_backend(device: str = "cpu") -> FlowFn:
    """OpenCV Farneback with TecoGAN's parameters on grayscale frames."""
    import cv2

    del device

    def flow(src, dst):
        return np.stack(
            [cv2.calcOpticalFlowFarneback(_gray(a), _gray(b), None, 0.5, 3, 15, 3, 5, 1.2, 0) for a, b in zip(src, dst)]
        ).astype(np.float32)

    flow.description = f"OpenCV {cv2.__version__} Farneback (0.5, 3, 15, 3, 5, 1.2, 0) on RGB2GRAY uint8"
    return flow


def raft_backend(device: str = "cpu") -> FlowFn:
    """torchvision RAFT-large with weights found offline (raises WeightsUnavailable otherwise)."""
    import torch
    from torchvision.models.optical_flow import raft_large

    path = find_weight(*RAFT_FILES)
    model = raft_large(weights=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = model.to(device).eval()

    def to_tensor(frames):
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().to(device)
        return x / 127.5 - 1.0  # the weights' preset normalisation to [-1, 1]

    def flow(src, dst):
        a, b = to_tensor(src), to_tensor(dst)
        h, w = a.shape[-2:]
        ph, pw = (-h) % 8, (-w) % 8
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)  # InputPadder(mode="sintel")
        a = torch.nn.functional.pad(a, pad, mode="replicate")
        b = torch.nn.functional.pad(b, pad, mode="replicate")
        with torch.inference_mode():
            out = model(a, b, num_flow_updates=RAFT_ITERATIONS)[-1]
        out = out[:, :, pad[2] : pad[2] + h, pad[0] : pad[0] + w]
        return out.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)

    flow.description = (
        f"torchvision raft_large, weights {path.name} (raft-things, FlyingChairs+FlyingThings), "
        f"{RAFT_ITERATIONS} iterations, InputPadder-style replicate padding to a multiple of 8"
    )
    return flow


def spynet_backend(device: str = "cpu") -> FlowFn:
    """SPyNet from a BasicVSR-family checkpoint found offline (raises WeightsUnavailable otherwise)."""
    from ...baselines.spynet import flow_backend

    path = find_weight(*SPYNET_FILES)
    flow = flow_backend(path, device=device)
    flow.description = f"SPyNet of {path.name} (sete_vsr.baselines.spynet)"
    return flow


FLOW_BACKENDS: dict[str, Callable[..., FlowFn]] = {
    "dis": dis_backend,
    "farneback": farneback_backend,
    "raft": raft_backend,
    "spynet": spynet_backend,
}
FLOW_LABELS = {"dis": "DIS", "farneback": "Farneback", "raft": "RAFT", "spynet": "SPyNet"}


def register_flow_backend(name: str, factory: Callable[..., FlowFn], label: str | None = None) -> None:
    """Make ``name`` usable as a flow backend; ``factory(device=...)`` returns a :data:`FlowFn`."""
    FLOW_BACKENDS[name] = factory
    FLOW_LABELS[name] = label or name


def warp(img: np.ndarray, flow: np.ndarray, border: str = "replicate") -> np.ndarray:
    """Backward-warp ``(H, W, C)`` ``img`` by ``(H, W, 2)`` flow: ``out(x) = img(x + flow(x))``, bilinear.

    ``border``: ``"replicate"`` (clamped coordinates, for images) or ``"zero"``.
    """
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
    out = cv2.remap(img.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=mode)
    return out.reshape(img.shape)
