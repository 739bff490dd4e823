"""Train one zoo architecture on the shared DSB split (the command recorded in model cards).

Example::

    python scripts/train_model.py --arch unet --config '{"base": 16}' --out runs/unet16 --epochs 60
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from napari_nucleiseg.training.dataset import default_data_dir, split_dsb
from napari_nucleiseg.training.trainer import fit

SPLITS = Path(__file__).resolve().parents[1] / "splits"


def extra_samples(spec: str, channels: int, target: float, repeat: bool = True,
                  stain_signal: str = "darkest", stain_variants: int = 0, refit: bool = False) -> tuple[list, list]:
    """Training and validation samples of ``DIR:SPLIT[:REPEAT]`` (``--extra``), shrunk where their
    nuclei are larger than ``target`` / 0.9 (as ``segment()`` shrinks such images); the training
    samples ``REPEAT`` times over unless ``repeat`` is False; stained training samples with
    ``stain_variants`` stain-jittered variants. ``refit``: the validation tiles are training
    tiles too (no validation samples), the test tiles stay out."""
    from napari_nucleiseg.inference.sizing import median_diameter, shrink, shrink_labels, zoom_for
    from napari_nucleiseg.training.dataset import Sample, load_samples, read_ids

    folder, _, split = spec.partition(":")
    split, _, times = split.partition(":")
    test, val = (set(read_ids(SPLITS / f"{split}_{part}.txt")) for part in ("test", "val"))
    out = {"train": [], "val": []}
    inputs = {"channels": channels, "stain_signal": stain_signal}
    val = set() if refit else val
    samples = (load_samples(folder, exclude=test | val, stain_variants=stain_variants, **inputs)
               + load_samples(folder, include=val, **inputs))
    for s in samples:
        zoom = zoom_for(median_diameter(s.labels), target)
        if zoom < 1:
            s = Sample(shrink(s.image, zoom), shrink_labels(s.labels, zoom), s.name, s.kind,
                       tuple(shrink(v, zoom) for v in s.variants))
        out["val" if s.name in val else "train"].append(s)
    print(f"{folder}: {len(out['train'])} training (x{times or 1} in the draw), {len(out['val'])} validation "
          "images", flush=True)
    return out["train"] * (int(times or 1) if repeat else 1), out["val"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arch", required=True)
    ap.add_argument("--config", default="{}")
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--steps-per-epoch", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--loss", default="bce_dice")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--val-every", type=int, default=2)
    ap.add_argument("--val-limit", type=int, default=None)
    ap.add_argument("--init", default=None, help="start from these weights (a warm restart)")
    ap.add_argument("--shares", default=None,
                    help='JSON share of training crops per image kind, e.g. \'{"stained": 0.25}\'')
    ap.add_argument("--contact-weight", type=float, default=0.0,
                    help="extra BCE weight where two nuclei touch (U-Net weight map)")
    ap.add_argument("--snapshots", action="store_true",
                    help="keep the weights of every validated epoch (for checkpoint averaging)")
    ap.add_argument("--augment", default=None,
                    help='JSON options of augment.Augmenter, e.g. \'{"dim_nuclei": 0.5}\'')
    ap.add_argument("--kinds", default=None,
                    help="train and validate on these image kinds only, e.g. 'stained' (a specialist)")
    ap.add_argument("--test-file", default=None,
                    help="held-out test ids (splits/dsb2018_test.txt) left out of training and validation")
    ap.add_argument("--extra", action="append", default=[], metavar="DIR:SPLIT[:REPEAT]",
                    help="another data set (images/ + labels/) whose seeded splits are in splits/: "
                         "'../shared/data/nc/monuseg2018:monuseg2018:6' trains on every tile not in "
                         "splits/monuseg2018_test.txt or _val.txt, each drawn as often as 6 images, and "
                         "validates on the _val ones")
    ap.add_argument("--refit", action="store_true",
                    help="the final fit of a recipe chosen on the --extra sets' validation tiles: train on "
                         "those tiles too (their test tiles stay out)")
    ap.add_argument("--stain-signal", default="darkest", choices=("darkest", "red"),
                    help="nucleus signal of stained colour images (preprocess.nucleus_signal)")
    ap.add_argument("--render-stained", type=int, default=0, metavar="N",
                    help="N fluorescence training images rendered as stained tissue (stain_render), added "
                         "after --kinds")
    ap.add_argument("--stain-variants", type=int, default=0,
                    help="stain-jittered variants of each stained training image (stain_augment)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = json.loads(args.config)
    train, val = split_dsb(args.data, test_file=args.test_file, channels=config.get("in_channels", 1),
                           stain_signal=args.stain_signal, stain_variants=args.stain_variants)
    rendered = []
    if args.render_stained:
        from napari_nucleiseg.training.stain_render import rendered_samples

        rendered = rendered_samples(train, args.render_stained, config.get("in_channels", 1), args.stain_signal)
    if args.kinds:
        kinds = set(args.kinds.split(","))
        train, val = [s for s in train if s.kind in kinds], [s for s in val if s.kind in kinds]
    train = train + rendered
    if args.val_limit:
        val = val[: args.val_limit]
    for spec in args.extra:
        more_train, more_val = extra_samples(spec, config.get("in_channels", 1), target=19.5,
                                             stain_signal=args.stain_signal,
                                             stain_variants=args.stain_variants, refit=args.refit)
        train, val = train + more_train, val + more_val
    print(f"{len(train)} training, {len(val)} validation images", flush=True)
    res = fit(args.arch, config, train, val, args.out, epochs=args.epochs,
              steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, lr=args.lr,
              loss=args.loss, val_every=args.val_every, log=lambda s: print(s, flush=True),
              init=args.init, shares=json.loads(args.shares) if args.shares else None,
              contact_weight=args.contact_weight, snapshots=args.snapshots,
              augment=json.loads(args.augment) if args.augment else None)
    print(json.dumps(res["best"]), flush=True)


if __name__ == "__main__":
    sys.exit(main())
