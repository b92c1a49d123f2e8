"""Package-level contracts: light import, CLI entry, method table."""

import subprocess
import sys

import numpy as np
import pytest

from sete_vsr.errors import SeteVSRError


def test_import_is_light():
    """`import sete_vsr` must not pull torch, training or metric dependencies."""
    code = (
        "import sys, sete_vsr; heavy = [m for m in ('torch', 'diffusers', 'transformers', 'accelerate', "
        "'pyiqa', 'matplotlib', 'cv2', 'av') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_and_methods():
    out = subprocess.run([sys.executable, "-m", "sete_vsr", "methods"], capture_output=True, text=True, check=True)
    assert "bicubic" in out.stdout.split()


def test_unknown_method_is_a_clear_error():
    from sete_vsr import load_method

    with pytest.raises(SeteVSRError, match="unknown method"):
        load_method("no-such-method")


def test_method_interface_checks_input():
    from sete_vsr.methods import VSRMethod

    class Nearest(VSRMethod):
        name = "nearest"

        def upscale(self, frames):
            return frames.repeat(4, axis=1).repeat(4, axis=2)

    out = Nearest()(np.zeros((2, 5, 6, 3), np.uint8))
    assert out.shape == (2, 20, 24, 3)
    with pytest.raises(SeteVSRError, match="uint8"):
        Nearest()(np.zeros((2, 5, 6, 3), np.float32))
