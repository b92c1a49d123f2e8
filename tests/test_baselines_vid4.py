"""The official BasicVSR checkpoint: strict loading, and Vid4 BI numbers recorded by benchmarks/basicvsr_vid4.py.

The full run (``python benchmarks/basicvsr_vid4.py``, CPU) gave 27.2367 dB / 0.8249 Y-PSNR/SSIM over Vid4
(published 27.24 / 0.8251). The recurrent output of a frame depends on the whole clip, so the CI check runs one
whole clip, ``city`` (34 frames, the shortest), through ``sete-vsr eval`` and compares it with that clip's value
from the full run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sete_vsr.baselines.basicvsr import BasicVSR
from sete_vsr.baselines.checkpoints import load_checkpoint
from sete_vsr.baselines.registry import get_spec, sha256_of

pytestmark = pytest.mark.shared

# benchmarks/basicvsr_vid4.py, full Vid4 run (CPU, torch 2.14): per-clip values of basicvsr-vimeo-bi
FULL_RUN_CITY = {"psnr_y": 27.6519, "ssim_y": 0.8047}
# the first 3 frames of calendar as a clip of their own (CPU, torch 2.x)
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


@pytest.mark.slow
def test_sete_vsr_eval_reproduces_the_full_run_on_city(shared, tmp_path):
    from sete_vsr.cli import main

    argv = [
        "eval", "--methods", "basicvsr-vimeo-bi", "--dataset", "vid4", "--root", str(shared("data", "frames", "vid4_GT")),
        "--degradation", "BI", "--metrics", "psnr_y,ssim_y", "--clips", "city", "--device", "cpu",
        "--weights-dir", str(shared("weights")), "--out", str(tmp_path / "run"), "--no-plots", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    per_clip = json.loads((tmp_path / "run" / "results.json").read_text())["per_clip"]
    assert per_clip["psnr_y"]["basicvsr-vimeo-bi"]["city"] == pytest.approx(FULL_RUN_CITY["psnr_y"], abs=0.01)
    assert per_clip["ssim_y"]["basicvsr-vimeo-bi"]["city"] == pytest.approx(FULL_RUN_CITY["ssim_y"], abs=2e-4)
