"""Entry of a SeTe-VSR model for `DiffusionPipeline.from_pretrained(MODEL, trust_remote_code=True)`.

It holds no code: the pipeline comes from the installed package (`pip install sete-vsr`).
"""

from sete_vsr import SeTeVSRPipeline

__all__ = ["SeTeVSRPipeline"]
