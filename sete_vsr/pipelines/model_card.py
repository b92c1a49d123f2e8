"""The model card (``README.md``) of a saved SeTe-VSR pipeline, written by ``save_pretrained`` and before each upload.

The card says what the model is, lists its components, tells how it was built and trained (from the pipeline's
construction record, ``assembled_from`` in ``model_index.json``) and how to run it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import __version__


def write_model_card(pipe, folder: str | os.PathLike) -> None:
    """Write :func:`build_model_card` of ``pipe`` to ``folder/README.md``."""
    (Path(folder) / "README.md").write_text(build_model_card(pipe), encoding="utf-8")


def build_model_card(pipe) -> str:
    """The model card of ``pipe``: what the model is, its components, how it was built, how to run it."""
    built = dict(pipe.config.get("assembled_from") or {})
    tags = ["video-super-resolution", "diffusers", "sete-vsr"]
    header = ["---", "library_name: diffusers", "pipeline_tag: image-to-video", f"tags: [{', '.join(tags)}]"]
    if built.get("base"):
        header.append(f"base_model: {built['base']}")
    header.append("---")
    rows = []
    for name in ("unet", "vae", "semantic_encoder", "text_encoder", "tokenizer", "scheduler"):
        component = getattr(pipe, name, None)
        if component is None:
            continue
        size = "-"
        if hasattr(component, "parameters"):
            size = f"{sum(p.numel() for p in component.parameters()) / 1e6:.1f} M"
        rows.append(f"| `{name}` | `{type(component).__name__}` | {size} |")
    if built.get("preset"):
        origin = (
            f"Built with the `{built['preset']}` preset with **random weights**: it produces noise, not "
            "super-resolution. It exists to test the code and your setup."
        )
    elif built.get("base"):
        origin = (
            f"Assembled with `SeTeVSRPipeline.from_sd21` (sete-vsr {built.get('sete_vsr_version', '?')}) from "
            f"Stable Diffusion 2.1 [`{built['base']}`](https://huggingface.co/{built['base']}) (U-Net, VAE; the "
            f"text encoder computed the stored empty-prompt embedding) and SAM2 "
            f"[`{built.get('semantic')}`](https://huggingface.co/{built.get('semantic')}) (image encoder). Every "
            "new layer (LR conditioning, SeAM"
            + (", temporal transformer and TSAM" if built.get("temporal") else "")
            + ", temporal VAE layers) starts at zero, so until trained the model is Stable Diffusion 2.1 "
            "ignoring its LR input."
        )
    elif built.get("description"):
        origin = built["description"]
    else:
        origin = "Provenance not recorded."
    training = built.get("training", "untrained (as assembled)")
    lines = [
        *header,
        "",
        "# SeTe-VSR",
        "",
        "A latent diffusion pipeline for x4 real-world video super-resolution after *SeTe-VSR: Semantic and "
        "Temporal Guided Video Super-Resolution*: Stable Diffusion 2.1's U-Net conditioned on the LR latents, "
        "with semantic cross-attention (SeAM) over SAM2 image embeddings and temporal-spatial modules (temporal "
        "transformer, TSAM), a VAE with a temporal decoder, and long videos processed in blended temporal windows "
        "and spatial tiles.",
        "",
        "| component | class | parameters |",
        "|---|---|---|",
        *rows,
        "",
        "## How it was built",
        "",
        origin,
        "",
        f"Training: {training}.",
        "",
        "## Usage",
        "",
        "```python",
        "import sete_vsr",
        "pipe = sete_vsr.SeTeVSRPipeline.from_pretrained(MODEL)",
        'pipe("input.mp4", write_to="output.mp4")',
        "```",
        "",
        "```bash",
        "sete-vsr upscale input.mp4 -o output.mp4 --model MODEL",
        "```",
        "",
        f"Created by sete-vsr {__version__}. Construction record: `{json.dumps(built, sort_keys=True)}`.",
        "",
    ]
    return "\n".join(lines)
