"""``nucleiseg train``: train a zoo architecture on a folder of images + label images."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .options import positive_int


def register(sub) -> None:
    p = sub.add_parser("train", help="train a zoo architecture (resumable)")
    # checked when the command runs (a wrong name lists them): the choices would load torch for every --help
    p.add_argument("--arch", default="unet", help="architecture: unet, residual_unet, resnet_unet, unet_plus, "
                   "unet_plusplus or maskrcnn_lite (default: unet)")
    p.add_argument("--config", default="{}", help='architecture options as JSON, e.g. \'{"base": 16}\'')
    p.add_argument("--data", default=None, help="folder with train/ (images/, labels/) and val.txt; "
                   "default: ../shared/data/dsb2018")
    p.add_argument("--out", required=True, help="run folder (checkpoints, history, best weights)")
    p.add_argument("--epochs", type=positive_int, default=60)
    p.add_argument("--steps-per-epoch", type=positive_int, default=None)
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--loss", default="bce_dice", choices=["bce_dice", "jaccard", "bce_log_dice"])
    p.add_argument("--val-every", type=positive_int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-resume", action="store_true", help="start over even if OUT has a checkpoint")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..device import resolve_device
    from ..models import checked_build
    from ..training.dataset import default_data_dir, split_dsb
    from ..training.trainer import fit

    data = Path(args.data) if args.data else default_data_dir()
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: training data folder not found")
    config = json.loads(args.config)
    if not isinstance(config, dict):
        raise ValueError(f"--config must be a JSON object of architecture options, e.g. '{{\"base\": 16}}', "
                         f"not {args.config!r}")
    checked_build(args.arch, **config)  # before the data: a bad option costs no loading time
    resolve_device(args.device)
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr {args.lr}: the learning rate must be a positive number")
    train, val = split_dsb(data, channels=int(config.get("in_channels", 1)))
    if not train:
        raise ValueError(f"{data}: no training images (images/ with label images of the same names in labels/)")
    print(f"{len(train)} training and {len(val)} validation images from {data}")
    res = fit(args.arch, config, train, val, args.out, epochs=args.epochs,
              steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, lr=args.lr,
              loss=args.loss, val_every=args.val_every, device=args.device,
              resume=not args.no_resume, log=lambda s: print(s, flush=True))
    print("best:", json.dumps(res["best"]))
    return 0
