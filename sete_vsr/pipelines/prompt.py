"""The Stable Diffusion 2.x text embedding of a prompt, for assembly (the stored empty prompt) and inference."""

from __future__ import annotations

import torch
from transformers import CLIPTextModel, CLIPTokenizer


def encode_prompt(
    text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer, prompt: str, device: torch.device | str
) -> torch.Tensor:
    """Stable Diffusion 2.x text embedding of one prompt (the last hidden state, padded to the tokenizer's length).

    Returns:
        `(1, tokenizer.model_max_length, hidden_size)` in the text encoder's dtype.
    """
    ids = tokenizer(
        [prompt], padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
    return text_encoder(ids.to(device))[0]
