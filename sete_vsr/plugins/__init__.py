"""Plug-in blocks for the CNN baselines: SEEM and the Semantic Lens blocks.

SEEM also comes as methods (``<base>+seem``, :mod:`sete_vsr.plugins.plugin_methods`) and with its fine-tuning entry,
``accelerate launch -m sete_vsr.plugins.train_seem CONFIG.yaml`` (:mod:`sete_vsr.plugins.train_seem`). BasicVSR with the
Semantic Lens blocks comes as ``<basicvsr>+semantic-lens`` (:class:`sete_vsr.plugins.plugin_methods.SemanticLensMethod`) and
is fine-tuned by ``accelerate launch -m sete_vsr.plugins.train_semantic_lens CONFIG.yaml``
(:mod:`sete_vsr.plugins.train_semantic_lens`). Both trainers share :mod:`sete_vsr.plugins.training`.
"""
