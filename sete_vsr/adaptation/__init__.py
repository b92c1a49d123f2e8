"""Self-supervised test-time adaptation of VSR networks and its distillation variant."""
