"""Plug-in blocks for the CNN baselines: SEEM and the Semantic Lens blocks."""
