"""The official BasicVSR checkpoint: strict loading, and Vid4 BI numbers recorded by benchmarks/basicvsr_vid4.py.

The recurrent output depends on the whole clip, so the CI check runs exactly the subset whose
values were recorded (calendar, first 3 frames, one pass); the full-Vid4 mean (27.24 dB
published) is asserted by the benchmark.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sete_vsr.baselines.basicvsr import BasicVSR
from sete_vsr.baselines.checkpoints import load_checkpoint
from sete_vsr.baselines.registry import get_spec, sha256_of

pytestmark = pytest.mark.shared

# benchmarks/basicvsr_vid4.py --clips calendar --frames 3 (CPU, torch 2.x)
CALENDAR_FIRST_3 = {"psnr_y": 23.062215222102026, "ssim_y": 0.7703004892526933}


def test_official_basicvsr_checkpoint_loads_strictly(shared):
    path = shared("weights", "basicvsr", "BasicVSR_Vimeo90K_BIx4.pth")
    assert sha256_of(path).startswith(get_spec("basicvsr-vimeo-bi").sha256_prefix)
    model = load_checkpoint(BasicVSR(64, 30), path)
    assert sum(p.numel() for p in model.parameters()) == 6_291_311


@pytest.mark.slow
def test_basicvsr_vid4_bi_calendar_matches_recorded_values(shared):
    from sete_vsr.data.degradations import bi_degrade
    from sete_vsr.eval.metrics.fullref import psnr, ssim
    from sete_vsr.methods import load_method

    files = sorted(shared("data", "frames", "vid4_GT", "calendar").glob("*.png"))[:3]
    gt = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    method = load_method(
        "basicvsr-vimeo-bi", checkpoint=shared("weights", "basicvsr", "BasicVSR_Vimeo90K_BIx4.pth"), device="cpu",
        progress=False,
    )
    sr = method(bi_degrade(gt))
    assert float(psnr(sr, gt, y_channel=True).mean()) == pytest.approx(CALENDAR_FIRST_3["psnr_y"], abs=0.01)
    assert float(ssim(sr, gt, y_channel=True).mean()) == pytest.approx(CALENDAR_FIRST_3["ssim_y"], abs=2e-4)
