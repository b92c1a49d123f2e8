"""The model card (``README.md``) of a saved SeTe-VSR pipeline, written by ``save_pretrained`` and before each upload.

The card says what the model is, lists its components, tells how it was built and trained (from the pipeline's
construction record, ``assembled_from`` in ``model_index.json``) and how to run it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import __version__


def write_model_card(pipe, folder: str | os.PathLike, model: str | None = None) -> None:
    """Write :func:`build_model_card` of ``pipe`` to ``folder/README.md``; ``model``: its address (default ``folder``)."""
    (Path(folder) / "README.md").write_text(build_model_card(pipe, model or str(folder)), encoding="utf-8")


# Stable Diffusion 2.1's licence (CreativeML Open RAIL++-M) carries over to weights derived from it; a model built
# from random weights has the package's licence.
DERIVED_LICENSE = "openrail++"
OWN_LICENSE = "apache-2.0"


def card_metadata(built: dict) -> list[str]:
    """The YAML header lines (without ``---``) of a model built as ``built`` (``assembled_from``) records."""
    bases = [model for model in (built.get("base"), built.get("semantic")) if model]
    lines = [
        f"license: {DERIVED_LICENSE if built.get('base') else OWN_LICENSE}",
        "library_name: diffusers",
        "pipeline_tag: video-to-video",
        "tags: [video-super-resolution, diffusers, sete-vsr]",
    ]
    if bases:
        lines += ["base_model:", *(f"- {model}" for model in bases)]
    return lines


def training_table(stages: list[dict]) -> list[str]:
    """A Markdown table of the recorded training runs (``assembled_from["training_stages"]``), oldest first."""
    if not stages:
        return []
    rows = ["| stage | steps | data | clip frames | degradation | batch | learning rate |", "|---|---|---|---|---|---|---|"]
    for stage in stages:
        data = stage.get("data") or {}
        rows.append(
            f"| {stage.get('stage', '?')} | {stage.get('steps', '?')} | {Path(str(data.get('root', '-'))).name} "
            f"| {stage.get('window_length', '-')} | {stage.get('degradation', '-')} | {stage.get('batch_size', '-')} "
            f"| {stage.get('learning_rate', '-')} |"
        )
    return ["", *rows]


def build_model_card(pipe, model: str = "MODEL") -> str:
    """The model card of ``pipe``: what the model is, its components, how it was built, how to run it.

    ``model``: the folder or Hub id it is loaded from, written into the usage snippets.
    """
    built = dict(pipe.config.get("assembled_from") or {})
    header = ["---", *card_metadata(built), "---"]
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
        "transformer, TSAM), a VAE with a temporal decoder, and long videos processed segment by segment in "
        "temporal windows and spatial tiles whose boundaries shift from step to step.",
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
        *training_table(built.get("training_stages") or []),
        "",
        "## Usage",
        "",
        "With `pip install sete-vsr`:",
        "",
        "```python",
        "import sete_vsr",
        f"pipe = sete_vsr.SeTeVSRPipeline.from_pretrained({model!r})",
        'pipe("input.mp4", write_to="output.mp4")',
        "```",
        "",
        "or through diffusers, whose custom-pipeline entry file in this repository only imports the installed "
        "`sete_vsr` package:",
        "",
        "```python",
        "from diffusers import DiffusionPipeline",
        f"pipe = DiffusionPipeline.from_pretrained({model!r}, trust_remote_code=True)",
        'frames = pipe("input.mp4").frames[0]  # batch first: the first video\'s frames',
        "```",
        "",
        "```bash",
        f"sete-vsr upscale input.mp4 -o output.mp4 --model {model}",
        "```",
        "",
        f"Created by sete-vsr {__version__}. Construction record: `{json.dumps(built, sort_keys=True)}`.",
        "",
    ]
    return "\n".join(lines)
