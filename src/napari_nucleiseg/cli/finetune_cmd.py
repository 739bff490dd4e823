"""``nucleiseg finetune``: fine-tune a zoo model on corrected images into a new user model."""

from __future__ import annotations

import signal
import sys
import threading

from .options import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a zoo model on corrected images (saved as a new user model)",
        description="Fine-tune a zoo model on one or more images with corrected labels. The result is "
                    "saved as a new user model (shipped models are never changed) that every other "
                    "command and the napari widgets can use by name.",
    )
    p.add_argument("--model", default="default", help="base zoo model (default: the shipped default)")
    p.add_argument("--image", action="append", required=True, metavar="IMG",
                   help="training image; repeat for several, each followed by its --labels")
    p.add_argument("--labels", action="append", required=True, metavar="LAB",
                   help="label image (0 = background) for the --image at the same position")
    p.add_argument("--region", action="append", default=None, metavar="Y0,X0,Y1,X1",
                   help="use only this rectangle of the image at the same position ('all' for the whole)")
    p.add_argument("--val-image", action="append", default=[], metavar="IMG",
                   help="held-out image whose DSB score picks the weights kept")
    p.add_argument("--val-labels", action="append", default=[], metavar="LAB")
    p.add_argument("--replay-image", action="append", default=[], metavar="IMG",
                   help="another of your images, no labels needed (repeatable): the new model is kept "
                        "segmenting it as the base model does, against forgetting other image types")
    p.add_argument("--channel", type=int, default=None, metavar="N",
                   help="the nucleus channel of multichannel images, 0 = first (segment with the same "
                        "--channel afterwards; default: all channels)")
    p.add_argument("--name", default=None, help="name of the new model (default: <model>-finetuned)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, default=None, help="optimisation steps (default 200)")
    g.add_argument("--minutes", type=float, default=None, help="time budget instead of a step count")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default 3e-4)")
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--blend", type=float, default=None,
                   help="fraction of the learnt change kept: base + BLEND * (fine-tuned - base) "
                        "(default 0.5; 1 keeps the fine-tuned weights as they are)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _parse_region(text: str):
    if text.strip().lower() in ("", "all", "none"):
        return None
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 4:
        raise ValueError(f"--region {text!r}: expected four integers Y0,X0,Y1,X1 or 'all'")
    return tuple(vals)


def _read(path, channel: int | None):
    """An image file, or its nucleus ``channel`` alone (``checks.nucleus_channel``)."""
    from ..errors import InvalidImageError
    from ..inference.checks import nucleus_channel
    from ..io.images import read_image

    try:
        return nucleus_channel(read_image(path, for_segmentation=True, channels=channel is not None), channel)
    except InvalidImageError as exc:
        raise InvalidImageError(f"{path}: {exc}") from None


def _read_pairs(images, labels, what, channel: int | None = None):
    from ..io.images import read_labels

    if len(images) != len(labels):
        raise ValueError(f"{len(images)} {what}image(s) but {len(labels)} {what}labels: give one "
                         "labels file for each image, in the same order")
    return [(_read(i, channel), read_labels(lab)) for i, lab in zip(images, labels)]


def run(args) -> int:
    from pathlib import Path

    from ..training.finetune import DEFAULT_BLEND, DEFAULT_LR, fine_tune

    pairs = _read_pairs(args.image, args.labels, "", args.channel)
    val = (_read_pairs(args.val_image, args.val_labels, "validation ", args.channel)
           if (args.val_image or args.val_labels) else None)
    regions = None
    if args.region:
        if len(args.region) != len(pairs):
            raise ValueError(f"{len(args.region)} --region for {len(pairs)} images: give one per image "
                             "('all' for a whole image)")
        regions = [_parse_region(r) for r in args.region]
    from tqdm import tqdm

    bar = tqdm(total=1000, file=sys.stderr, disable=None, dynamic_ncols=True,
               bar_format="{percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]")

    def progress(p):
        if p.loss is None:
            bar.write(f"  base model: validation DSB {p.val_score:.3f}", file=sys.stderr)
            return
        bar.update(max(0, int(1000 * p.fraction) - bar.n))
        bar.set_postfix_str(f"step {p.step} loss {p.smoothed_loss:.4f}", refresh=False)
        if p.val_score is not None:
            bar.write(f"  step {p.step}: validation DSB {p.val_score:.3f}", file=sys.stderr)

    stop = {"requested": False}

    def on_interrupt(_sig, _frame):
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print("stopping after this step and saving the best weights so far "
              "(press Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if in_main else None
    try:
        res = fine_tune(
            args.model, pairs, regions=regions, steps=args.steps,
            time_budget_s=None if args.minutes is None else args.minutes * 60,
            lr=DEFAULT_LR if args.lr is None else args.lr, batch_size=args.batch_size, device=args.device,
            blend=DEFAULT_BLEND if args.blend is None else args.blend,
            validation=val, name=args.name, image_names=[Path(p).name for p in args.image],
            validation_names=[Path(p).name for p in args.val_image], seed=args.seed,
            replay_images=[_read(p, args.channel) for p in args.replay_image],
            progress=progress, cancel=lambda: stop["requested"], log=lambda s: print(s, flush=True),
        )
    finally:
        bar.close()
        if in_main:
            signal.signal(signal.SIGINT, previous)
    print(f"model {res.name!r} saved in {res.entry.weights.parent}", file=sys.stderr)
    return 0
