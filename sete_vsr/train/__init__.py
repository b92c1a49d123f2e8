"""Training entry point for ``accelerate launch -m sete_vsr.train CONFIG``."""
