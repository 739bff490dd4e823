"""Int8 networks in ``segment()``: a probe (not shipped).

Each of the default's three networks (batch norm folded) is quantised with torch's FX graph mode
(x86 engine) on first use, its activation ranges calibrated on 12 seeded DSB *training* images of
its kind, prepared as ``segment()`` prepares them. Transposed convolutions stay in float: quantised,
they give wrong outputs on the x86 engine (torch 2.13). The int8 networks run without autocast.
``segment()`` is then scored on DSB val and the MoNuSeg validation tiles (never a test split) in
three numeric modes, twice each, in one process: bf16 autocast (where the CPU computes it), float32,
int8. Results and the rule: ``docs/speed.md``.

    python experiments/int8_probe.py [--histogram] [--float-ends]
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.ao.quantization import QConfig, QConfigMapping, get_default_qconfig_mapping
from torch.ao.quantization.observer import HistogramObserver, default_per_channel_weight_observer
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark import load_sets, run, tables  # noqa: E402
from devtools import routed_splits  # noqa: E402

from napari_nucleiseg import segment, zoo  # noqa: E402
from napari_nucleiseg.inference import predict  # noqa: E402
from napari_nucleiseg.models.blocks import PaddedModel  # noqa: E402
from napari_nucleiseg.training.dataset import default_data_dir  # noqa: E402
from napari_nucleiseg.zoo import loading  # noqa: E402

KINDS = ("fluorescence", "stained", "brightfield")


class Inner(nn.Module):
    """The network without its padding, which FX cannot trace."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.forward_padded(x)


class Padded(PaddedModel):
    """A traced graph of ``forward_padded``, padded to the network's stride as the network pads."""

    def __init__(self, graph, stride: int):
        super().__init__()
        self.graph, self.stride = graph, stride

    def forward_padded(self, x):
        return self.graph(x)


def quantize(net, images, histogram: bool = False, float_ends: bool = False) -> nn.Module:
    """Int8 copy of a folded zoo network, calibrated on prepared ``images``."""
    torch.backends.quantized.engine = "x86"
    net = net.eval().to(memory_format=torch.contiguous_format)
    mapping = get_default_qconfig_mapping("x86")
    if histogram:
        mapping = QConfigMapping().set_global(QConfig(activation=HistogramObserver.with_args(reduce_range=False),
                                                      weight=default_per_channel_weight_observer))
    mapping = mapping.set_object_type(nn.ConvTranspose2d, None)
    if float_ends:
        for name in ("net.full", "net.stem", "net.head"):
            mapping = mapping.set_module_name(name, None)
    cin = next(net.parameters()).shape[1]
    prepared = prepare_fx(Inner(net), mapping, (torch.randn(1, cin, 64, 64),))
    with torch.inference_mode():
        for image in images:
            predict.predict_maps(Padded(prepared, net.stride), image, torch.device("cpu"))
    return Padded(convert_fx(prepared), net.stride).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--histogram", action="store_true", help="histogram activation observers")
    ap.add_argument("--float-ends", action="store_true", help="first convolutions and head in float")
    ap.add_argument("--calib", type=int, default=12, help="calibration images per kind")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    root = default_data_dir()
    sets = {k: v for k, v in load_sets(root, None, nc_val=True).items() if k in ("DSB val", "MoNuSeg val")}
    entry = zoo.get_entry("resunet32")
    train, _ = routed_splits(entry.card, entry.stain_signal(), root=str(root))
    rng = np.random.default_rng(1)
    calib = {}
    for kind in KINDS:
        pool = [s for s in train if s.kind == kind]
        calib[kind] = [pool[i].image for i in rng.choice(len(pool), min(args.calib, len(pool)), replace=False)]
    kind_of = {str(entry.for_kind(k).weights): k for k in KINDS}
    float_cached, native = loading._cached, predict.autocast_dtype
    int8 = {}

    def int8_cached(path, mtime, device, adapter=None):
        net = float_cached(path, mtime, device, adapter)
        if path in kind_of and path not in int8:
            t0 = time.perf_counter()
            int8[path] = quantize(net, calib[kind_of[path]], args.histogram, args.float_ends)
            print("quantised", Path(path).name, f"in {time.perf_counter() - t0:.1f} s", flush=True)
        return int8.get(path, net)

    def labels(image):
        return segment(image, model="resunet32").labels

    rows = []
    for round_ in range(2):
        for mode in ("bf16" if native(torch.device("cpu")) else "native", "fp32", "int8"):
            loading._cached = int8_cached if mode == "int8" else float_cached
            predict.autocast_dtype = native if mode in ("bf16", "native") else (lambda device: None)
            rows.append(run(f"{mode}, round {round_ + 1}", labels, sets))
    print(tables(rows, sets))
    for r in rows:
        v = r["DSB val"]
        print(r["name"], *(f"{k} {v[k]:.4f}" for k in ("dsb_score", "ap50", *KINDS)),
              f"MoNuSeg val {r['MoNuSeg val']['dsb_score']:.4f}")


if __name__ == "__main__":
    main()
