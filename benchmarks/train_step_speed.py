"""Seconds per training step and per megapixel of inference of each zoo architecture, at the sizes
of the zoo comparison (docs/zoo_comparison.md): a step is a batch of 8 crops of 256x256 (forward,
backward, AdamW), inference one 512x512 image; bf16 autocast, channels-last, on this CPU.

    python benchmarks/train_step_speed.py [--threads 2]
"""

import argparse
import time

import torch

from napari_nucleiseg.models.registry import build

SIZES = [("unet", {"base": 16, "depth": 5}), ("residual_unet", {"base": 32, "depth": 4}),
         ("resnet_unet", {"base": 16, "resnet_depth": 18}), ("resnet_unet", {"base": 16, "resnet_depth": 34}),
         ("unet_plus", {"base": 16, "depth": 5}), ("unet_plusplus", {"base": 8, "depth": 5}),
         ("unet_plusplus", {"base": 16, "depth": 5})]


def step_seconds(model, batch: torch.Tensor, repeats: int = 3) -> float:
    """Fastest of ``repeats`` training steps after a first one (warm-up)."""
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(batch).float().mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def inference_s_per_mp(model, size: int = 512) -> float:
    """Seconds per megapixel of one forward pass (after a warm-up pass)."""
    model.eval()
    x = torch.randn(1, 1, size, size).to(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(x)
        t0 = time.perf_counter()
        model(x)
        return (time.perf_counter() - t0) / (size * size / 1e6)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    torch.set_num_threads(ap.parse_args().threads)
    print("| architecture | config | parameters | s / training step | network s / MP |\n|---|---|---|---|---|")
    batch = torch.randn(8, 1, 256, 256).to(memory_format=torch.channels_last)
    for arch, cfg in SIZES:
        model = build(arch, **cfg).to(memory_format=torch.channels_last)
        n = sum(p.numel() for p in model.parameters())
        print(f"| {arch} | {cfg} | {n / 1e6:.2f} M | {step_seconds(model, batch):.2f} | "
              f"{inference_s_per_mp(model):.2f} |", flush=True)


if __name__ == "__main__":
    main()
