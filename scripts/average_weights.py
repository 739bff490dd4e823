"""Average the weights of several training snapshots (checkpoint averaging, as in SWA).

Snapshots come from ``train_model.py --snapshots`` (``RUN/epoch_NNN.pt``). Batch-norm running
statistics are averaged like the other tensors.

    python scripts/average_weights.py runs/resunet32d/epoch_{080,090,100,110,120}.pt --out runs/resunet32d/avg.pt
"""

import argparse

import torch

from napari_nucleiseg.zoo import load_weights_file
from napari_nucleiseg.zoo.weights_file import save_weights


def average(paths) -> tuple[torch.nn.Module, dict]:
    """The model of the first file with every floating-point tensor replaced by the mean over files,
    and the blob of the latest snapshot (its ``epoch``)."""
    loaded = [load_weights_file(p) for p in paths]
    model, blob = loaded[0]
    states = [m.state_dict() for m, _ in loaded]
    mean = {}
    for k, v in states[0].items():
        if v.is_floating_point():
            mean[k] = torch.stack([s[k].float() for s in states]).mean(0)
        else:
            mean[k] = v
    model.load_state_dict(mean)
    return model, max((b for _, b in loaded), key=lambda b: b.get("epoch", 0))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("snapshots", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    model, blob = average(args.snapshots)
    save_weights(args.out, model, blob["architecture"], blob["config"],
                 {"averaged": [str(p) for p in args.snapshots], "epoch": blob.get("epoch")})
    print("wrote", args.out, "from", len(args.snapshots), "snapshots")


if __name__ == "__main__":
    main()
