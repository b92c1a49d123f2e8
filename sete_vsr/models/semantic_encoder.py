"""The frozen SAM2 image encoder that gives SeAM its semantic embeddings (paper Eq. 2).

:class:`SemanticEncoder` takes RGB frames, applies SAM2's own preprocessing (resize to a 1024x1024 square,
ImageNet mean/std) and returns SAM2's image embedding: the stride-16 output of the FPN neck plus SAM2's
"no memory" embedding, `(N, 256, 64, 64)` for the default 1024 input. It is what SAM2's image predictor hands
to its mask decoder.

Two backends give the same output contract:

* ``"transformers"`` (default): ``transformers.Sam2VisionModel``; build with :meth:`SemanticEncoder.from_transformers`
  (e.g. ``"facebook/sam2.1-hiera-tiny"``) or from a ``Sam2VisionConfig`` with random weights.
* ``"sam2"``: Meta's ``sam2`` package (installed without its CUDA extension and against the installed torch:
  ``SAM2_BUILD_CUDA=0 pip install --no-build-isolation --no-deps sam2 && pip install hydra-core iopath``); build with
  :meth:`SemanticEncoder.from_sam2` from one of its shipped configs and an optional checkpoint.

Either way the result is a diffusers ``ModelMixin``: ``save_pretrained``/``from_pretrained`` store and restore it
as one safetensors file plus ``config.json``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..errors import SeteVSRError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKENDS = ("transformers", "sam2")


class SemanticEncoder(ModelMixin, ConfigMixin):
    r"""Frozen SAM2 image encoder: RGB frames -> SAM2 image embeddings `(N, 256, S/16, S/16)`.

    Args:
        backend: ``"transformers"`` or ``"sam2"``.
        vision_config: transformers backend: the ``Sam2VisionConfig`` as a dict.
        sam2_config: sam2 backend: name of a config shipped with the ``sam2`` package, e.g.
            ``"configs/sam2.1/sam2.1_hiera_t.yaml"``.
        sam2_overrides: sam2 backend: Hydra overrides applied to that config (e.g. a smaller trunk).
        image_size: square side `S` the frames are resized to (SAM2 uses 1024).
        image_mean: per-channel mean of the normalisation, for pixels in [0, 1].
        image_std: per-channel standard deviation of the normalisation.
        chunk_size: frames encoded per forward pass of the image encoder (memory bound).
    """

    @register_to_config
    def __init__(
        self,
        backend: str = "transformers",
        vision_config: dict[str, Any] | None = None,
        sam2_config: str | None = None,
        sam2_overrides: tuple[str, ...] = (),
        image_size: int = 1024,
        image_mean: tuple[float, float, float] = IMAGENET_MEAN,
        image_std: tuple[float, float, float] = IMAGENET_STD,
        chunk_size: int = 4,
    ):
        super().__init__()
        if backend == "transformers":
            from transformers import Sam2VisionConfig, Sam2VisionModel

            self.image_encoder = Sam2VisionModel(Sam2VisionConfig.from_dict(dict(vision_config or {})))
            embed_dim = self.image_encoder.config.fpn_hidden_size
        elif backend == "sam2":
            if sam2_config is None:
                raise SeteVSRError('the "sam2" backend needs sam2_config, e.g. "configs/sam2.1/sam2.1_hiera_t.yaml"')
            model_config = _sam2_model_config(sam2_config, sam2_overrides)
            from hydra.utils import instantiate

            self.image_encoder = instantiate(model_config.image_encoder)
            embed_dim = self.image_encoder.neck.d_model
        else:
            raise SeteVSRError(f"unknown semantic-encoder backend {backend!r}; choose one of {BACKENDS}")
        if chunk_size < 1:
            raise SeteVSRError(f"chunk_size must be at least 1, got {chunk_size}")
        # SAM2 adds its learned "no memory" embedding to the image embedding of a single image.
        self.no_memory_embedding = nn.Parameter(torch.zeros(1, embed_dim, 1, 1))
        self.register_buffer("pixel_mean", torch.tensor(image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(image_std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    # ----------------------------------------------------------------------------------------- construction

    @classmethod
    def from_transformers(cls, pretrained_model_name_or_path: str, **kwargs) -> SemanticEncoder:
        """Load the image encoder of a transformers SAM2 checkpoint (a ``Sam2Model`` or a ``Sam2VisionModel``).

        Args:
            pretrained_model_name_or_path: Hub id (e.g. ``"facebook/sam2.1-hiera-tiny"``) or local folder.
            **kwargs: other :class:`SemanticEncoder` config arguments (``chunk_size``, ``image_size``, ...).
        """
        from transformers import AutoConfig, Sam2Model, Sam2VisionModel

        config = AutoConfig.from_pretrained(pretrained_model_name_or_path)
        if config.model_type == "sam2":
            # Sam2VisionModel.from_pretrained would silently skip the "vision_encoder." weights of a full model.
            sam2 = Sam2Model.from_pretrained(pretrained_model_name_or_path)
            vision, no_memory = sam2.vision_encoder, sam2.no_memory_embedding
        elif config.model_type == "sam2_vision_model":
            vision, no_memory = Sam2VisionModel.from_pretrained(pretrained_model_name_or_path), None
        else:
            raise SeteVSRError(f"{pretrained_model_name_or_path} is a {config.model_type!r} model, not SAM2")
        encoder = cls(backend="transformers", vision_config=vision.config.to_dict(), **kwargs)
        encoder.image_encoder.load_state_dict(vision.state_dict())
        if no_memory is not None:
            encoder.no_memory_embedding.copy_(no_memory.detach().reshape(encoder.no_memory_embedding.shape))
        return encoder

    @classmethod
    def from_sam2(
        cls,
        config: str = "configs/sam2.1/sam2.1_hiera_t.yaml",
        checkpoint: str | None = None,
        overrides: tuple[str, ...] = (),
        **kwargs,
    ) -> SemanticEncoder:
        """Build the image encoder with Meta's ``sam2`` package.

        Args:
            config: a config shipped with ``sam2`` (``configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml``).
            checkpoint: optional official checkpoint (``sam2.1_hiera_tiny.pt``, ...); random weights without it.
            overrides: Hydra overrides of the config.
            **kwargs: other :class:`SemanticEncoder` config arguments.
        """
        encoder = cls(backend="sam2", sam2_config=config, sam2_overrides=tuple(overrides), **kwargs)
        if checkpoint is not None:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            state = state.get("model", state)
            prefix = "image_encoder."
            encoder.image_encoder.load_state_dict(
                {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
            )
            if _sam2_model_config(config, overrides).get("directly_add_no_mem_embed", False):
                encoder.no_memory_embedding.copy_(state["no_mem_embed"].reshape(encoder.no_memory_embedding.shape))
        return encoder

    # ------------------------------------------------------------------------------------------- inference

    @torch.no_grad()
    def forward(self, frames: torch.Tensor | np.ndarray, keep_aspect: bool = False) -> torch.Tensor:
        """Encode frames in chunks of ``chunk_size``.

        Args:
            frames: RGB frames of any size: a tensor `(N, 3, H, W)` or `(3, H, W)`, or a numpy array
                `(N, H, W, 3)` or `(H, W, 3)`; uint8 in [0, 255] or float in [0, 1].
            keep_aspect: resize the longer side to `S` and the shorter one in proportion, pad the `S x S` input with
                zeros after the normalisation (the mean colour) and return only the embedding cells that hold the
                frame. ``False`` resizes every frame to `S x S` as SAM2 does; both are the same for square frames.

        Returns:
            `(N, 256, S/16, S/16)` SAM2 image embeddings ((N, 256, 64, 64) for S = 1024), in the encoder's
            dtype on its device (with ``keep_aspect``, `(N, 256, ceil(S H' / 16), ceil(S W' / 16))` for the
            resized frame `H' x W'`). Unbounded real values (the FPN neck output), finite for valid input.
        """
        pixels = _as_nchw(frames)
        embeddings = [self._encode(chunk, keep_aspect) for chunk in pixels.split(self.config.chunk_size)]
        return torch.cat(embeddings)

    def _encode(self, chunk: torch.Tensor, keep_aspect: bool = False) -> torch.Tensor:
        """`(n, 3, H, W)` in [0, 1] or uint8 -> `(n, 256, S/16, S/16)` (the frame's cells only with ``keep_aspect``)."""
        chunk = chunk.to(self.device)
        chunk = chunk.float() / 255.0 if chunk.dtype == torch.uint8 else chunk.float()
        size = self.config.image_size
        height, width = chunk.shape[-2:]
        resized = (size, size)
        if keep_aspect and height != width:
            longer = max(height, width)
            resized = (max(1, round(size * height / longer)), max(1, round(size * width / longer)))
        chunk = F.interpolate(chunk, size=resized, mode="bilinear", align_corners=False, antialias=True)
        chunk = (chunk - self.pixel_mean) / self.pixel_std
        chunk = F.pad(chunk, (0, size - resized[1], 0, size - resized[0])).to(self.dtype)
        if self.config.backend == "transformers":
            embedding = self.image_encoder(pixel_values=chunk).fpn_hidden_states[-1]
        else:
            embedding = self.image_encoder(chunk)["vision_features"]
        embedding = embedding + self.no_memory_embedding
        if resized != (size, size):
            stride = size // embedding.shape[-1]
            embedding = embedding[..., : -(-resized[0] // stride), : -(-resized[1] // stride)]
        return embedding


def _as_nchw(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Frames as a `(N, 3, H, W)` tensor (uint8 or float in [0, 1]), checking layout and range."""
    if isinstance(frames, np.ndarray):
        if frames.ndim not in (3, 4) or frames.shape[-1] != 3:
            raise SeteVSRError(f"numpy frames must be (N, H, W, 3) or (H, W, 3) RGB, got shape {frames.shape}")
        frames = torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3)
    if not isinstance(frames, torch.Tensor):
        raise SeteVSRError(f"frames must be a torch tensor or a numpy array, got {type(frames).__name__}")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise SeteVSRError(f"tensor frames must be (N, 3, H, W) or (3, H, W) RGB, got shape {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise SeteVSRError("no frames to encode")
    if frames.dtype != torch.uint8:
        if not frames.is_floating_point():
            raise SeteVSRError(f"frames must be uint8 or float, got {frames.dtype}")
        low, high = frames.aminmax()
        if low < -1e-3 or high > 1 + 1e-3:
            raise SeteVSRError(f"float frames must be in [0, 1], got values in [{low:.3g}, {high:.3g}]")
    return frames


def _sam2_model_config(config: str, overrides: tuple[str, ...] | list[str]):
    """The resolved ``model`` node of a config shipped with the ``sam2`` package."""
    try:
        import sam2  # noqa: F401  (initialises sam2's Hydra config module)
        from hydra import compose
        from omegaconf import OmegaConf
    except ImportError as err:
        raise SeteVSRError(
            'the "sam2" backend needs Meta\'s sam2 package: '
            "SAM2_BUILD_CUDA=0 pip install --no-build-isolation --no-deps sam2 && pip install hydra-core iopath"
        ) from err
    cfg = compose(config_name=config, overrides=list(overrides))
    OmegaConf.resolve(cfg)
    return cfg.model
