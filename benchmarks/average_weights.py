"""Average the weights of several training snapshots (checkpoint averaging, as in SWA).

Snapshots come from ``train_model.py --snapshots`` (``RUN/epoch_NNN.pt``). Batch-norm running
statistics are averaged like the other tensors.

    python benchmarks/average_weights.py runs/resunet32d/epoch_{080,090,100,110,120}.pt --out runs/resunet32d/avg.pt
"""

import argparse

import torch

from napari_nucleiseg.train import save_weights
from napari_nucleiseg.zoo import load_weights_file


def average(paths) -> tuple[torch.nn.Module, dict]:
    """The model of the first file with every floating-point tensor replaced by the mean over files."""
    model, blob = load_weights_file(paths[0])
    states = [load_weights_file(p)[0].state_dict() for p in paths]
    mean = {}
    for k, v in states[0].items():
        if v.is_floating_point():
            mean[k] = torch.stack([s[k].float() for s in states]).mean(0)
        else:
            mean[k] = v
    model.load_state_dict(mean)
    return model, blob


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("snapshots", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    model, blob = average(args.snapshots)
    save_weights(args.out, model, blob["architecture"], blob["config"],
                 {"averaged": [str(p) for p in args.snapshots]})
    print("wrote", args.out, "from", len(args.snapshots), "snapshots")


if __name__ == "__main__":
    main()
