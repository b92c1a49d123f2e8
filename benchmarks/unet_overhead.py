"""Cost of the SeTe modules: stage-2 SeTe U-Net vs the plain Stable Diffusion 2.1-base U-Net.

Full SD 2.1-base configuration with random weights, latent 32x32, F=4 frames, fp32. Both models run on the
same inputs, interleaved; the median seconds per frame of each and their ratio are reported, with the time
spent inside each kind of new module (measured with forward hooks on the SeTe model's timed runs).

    python benchmarks/unet_overhead.py [--repeats 3] [--device cpu]

Prints a JSON line last: sd21_s_per_frame, sete_s_per_frame, ratio, params_sd21, params_sete, plus
module_s_per_frame (seconds per frame inside SeAM, the temporal transformer and TSAM's parts).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict

import torch

from sete_vsr.models.attention import TemporalSpatialAwarenessModule, TemporalTransformer
from sete_vsr.models.presets import sd21_base_unet2d
from sete_vsr.models.unet import SeTeUNetModel


class ModuleTimer:
    """Accumulates wall time spent inside chosen modules (forward hooks; exact on the CPU, which is synchronous)."""

    def __init__(self, modules: dict[str, list[torch.nn.Module]], device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.enabled = False
        for label, group in modules.items():
            for module in group:
                module.register_forward_pre_hook(self._start)
                module.register_forward_hook(lambda mod, args, out, label=label: self._stop(mod, label))

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _start(self, module, args) -> None:
        if self.enabled:
            self._sync()
            module._bench_start = time.perf_counter()

    def _stop(self, module, label: str) -> None:
        if self.enabled:
            self._sync()
            self.seconds[label] += time.perf_counter() - module._bench_start


def new_module_groups(model: SeTeUNetModel) -> dict[str, list[torch.nn.Module]]:
    groups: dict[str, list[torch.nn.Module]] = defaultdict(list)
    for name, module in model.named_modules():
        if name.endswith(".semantic_attn"):
            groups["seam"].append(module)
        elif isinstance(module, TemporalTransformer):
            groups["temporal_transformer"].append(module)
        elif isinstance(module, TemporalSpatialAwarenessModule):
            groups["tsam"].append(module)
            groups["tsam.spatial_block"].append(module.spatial_block)
            groups["tsam.temporal_block"].append(module.temporal_block)
            groups["tsam.mlp"].append(module.mlp)
    return groups


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each model (after one warm-up)")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--latent-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--temporal-ff-mult", type=float, default=None, help="override the model default")
    parser.add_argument("--tsam-ff-mult", type=float, default=None, help="override the model default")
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    sd21 = sd21_base_unet2d().eval().to(device)
    options = {
        key: value
        for key, value in (("temporal_ff_mult", args.temporal_ff_mult), ("tsam_ff_mult", args.tsam_ff_mult))
        if value is not None
    }
    sete = SeTeUNetModel.from_unet2d(sd21, temporal=True, **options).eval().to(device)
    frames, size = args.frames, args.latent_size
    sample = torch.randn(frames, 4, size, size, device=device)
    lr_latents = torch.randn_like(sample)
    semantic_embeds = torch.randn(frames, 256, 64, 64, device=device)
    text = torch.randn(1, 77, 1024, device=device).expand(frames, -1, -1)
    sete.set_empty_prompt_embeds(text[:1])
    timer = ModuleTimer(new_module_groups(sete), device)

    def run_sd21() -> None:
        sd21(sample, 500, text)

    def run_sete() -> None:
        sete(sample, 500, lr_latents, semantic_embeds, frames)

    def sync_timed(fn) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = timed(fn)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return seconds

    sd21_times, sete_times = [], []
    with torch.inference_mode():
        run_sd21(), run_sete()  # warm-up
        for _ in range(args.repeats):
            sd21_times.append(sync_timed(run_sd21) / frames)
            timer.enabled = True
            sete_times.append(sync_timed(run_sete) / frames)
            timer.enabled = False
            print(f"sd21 {sd21_times[-1]:.3f} s/frame   sete {sete_times[-1]:.3f} s/frame", flush=True)

    sd21_s, sete_s = statistics.median(sd21_times), statistics.median(sete_times)
    result = {
        "sd21_s_per_frame": round(sd21_s, 4),
        "sete_s_per_frame": round(sete_s, 4),
        "ratio": round(sete_s / sd21_s, 3),
        "params_sd21": sum(p.numel() for p in sd21.parameters()),
        "params_sete": sum(p.numel() for p in sete.parameters()),
        "module_s_per_frame": {
            label: round(seconds / (args.repeats * frames), 4) for label, seconds in sorted(timer.seconds.items())
        },
        "temporal_ff_mult": sete.config.temporal_ff_mult,
        "tsam_ff_mult": sete.config.tsam_ff_mult,
        "latent": [size, size],
        "frames": frames,
        "device": str(device),
        "dtype": "float32",
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
