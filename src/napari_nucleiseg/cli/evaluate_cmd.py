"""``nucleiseg evaluate``: score predicted label images against ground truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .options import add_segment_options, segment_options


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score label images against ground truth (DSB score, AP@0.5, F1, PQ, semantic IoU)",
        description="Either compare two folders of label images (matched by file stem, a "
        "'_labels' suffix is ignored), or segment a labelled data set with a model "
        "(--data with images/ and labels/, optionally --ids FILE).",
    )
    p.add_argument("pred", nargs="?", help="folder (or file) of predicted label images")
    p.add_argument("truth", nargs="?", help="folder (or file) of ground-truth label images")
    p.add_argument("--data", help="a folder with images/ and labels/ to segment and score")
    p.add_argument("--ids", help="file listing the ids to use from --data (e.g. val.txt)")
    add_segment_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _stem(p: Path) -> str:
    """The name two label files of one image share: ``slide.ome.tif`` and ``slide_labels.tif`` -> ``slide``."""
    from ..io.results import result_stem

    s = result_stem(p)
    return s[: -len("_labels")] if s.endswith("_labels") else s


def _files(path: Path) -> dict:
    from ..io.images import is_image_file

    if path.is_file():
        return {_stem(path): path}
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    from ..io.results import OUTPUT_SUFFIXES

    maps = tuple(x for x in OUTPUT_SUFFIXES if x != "_labels.tif")  # the other result files of `segment`
    return {_stem(p): p for p in sorted(path.iterdir()) if is_image_file(p) and not p.name.endswith(maps)}


def _score_folders(pred: Path, truth: Path) -> list[list[dict]]:
    from ..io.images import read_labels

    if pred.is_file() and truth.is_file():  # two files named: compared whatever their names
        return [_scored(read_labels(truth), read_labels(pred), f"{pred} against {truth}")]
    pf, tf = _files(pred), _files(truth)
    common = sorted(set(pf) & set(tf))
    if not common:
        raise ValueError(f"no matching file names between {pred} and {truth}")
    for what, left in (("ground truth without a prediction", set(tf) - set(pf)),
                       ("predictions without ground truth", set(pf) - set(tf))):
        if left:
            names = ", ".join(sorted(left)[:5]) + (", ..." if len(left) > 5 else "")
            print(f"nucleiseg evaluate: warning: {len(left)} {what}, not scored: {names}", file=sys.stderr)
    return [_scored(read_labels(tf[k]), read_labels(pf[k]), f"{pf[k]} against {tf[k]}") for k in common]


def _scored(truth, pred, what: str) -> list[dict]:
    """``evaluate_planes`` (a stack slice by slice, as the Evaluate widget scores it), its refusal
    naming the files (``what``)."""
    from ..evaluation.metrics import evaluate_planes

    try:
        return evaluate_planes(truth, pred)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _score_model(args) -> list[list[dict]]:
    from ..errors import InvalidImageError
    from ..inference.pipeline import segment
    from ..io.images import read_image, read_labels
    from ..training.dataset import find_pairs, read_ids

    ids = set(read_ids(args.ids)) if args.ids else None
    pairs = find_pairs(args.data)
    if ids is not None and (absent := sorted(ids - {name for name, _, _ in pairs})):
        names = ", ".join(absent[:5]) + (", ..." if len(absent) > 5 else "")
        print(f"nucleiseg evaluate: warning: {len(absent)} ids of {args.ids} are not in {args.data}, not scored: "
              f"{names}", file=sys.stderr)
    rows = []
    for name, ip, lp in pairs:
        if ids is not None and name not in ids:
            continue
        opts = segment_options(args)
        image = read_image(ip, for_segmentation=True, channels=opts.channel is not None)
        try:
            seg = segment(image, opts)
        except InvalidImageError as exc:
            raise InvalidImageError(f"{ip}: {exc}") from None
        rows.append(_scored(read_labels(lp), seg.labels, f"{ip} against {lp}"))
    if not rows:
        raise ValueError(f"no labelled images selected in {args.data}")
    return rows


def _segmentation_options_given(args) -> list[str]:
    """The flags of ``args`` that only segmenting uses (``--ids`` and ``add_segment_options``) given
    another value than their default."""
    import argparse

    parser = argparse.ArgumentParser()
    add_segment_options(parser)
    defaults = vars(parser.parse_args([]))
    flags = {a.dest: a.option_strings[0] for a in reversed(parser._actions) if a.option_strings}
    given = sorted(flags[dest] for dest, value in defaults.items() if getattr(args, dest, value) != value)
    return (["--ids"] if args.ids else []) + given


def run(args) -> int:
    from ..evaluation.metrics import summarize

    if args.data:
        if args.pred or args.truth:
            raise ValueError("give PRED and TRUTH, or --data (to segment and score a labelled set), not both")
        rows = _score_model(args)
    elif args.pred and args.truth:
        if given := _segmentation_options_given(args):
            print(f"nucleiseg evaluate: warning: {', '.join(given)} apply to --data only, ignored: PRED and TRUTH "
                  "are scored as they are", file=sys.stderr)
        rows = _score_folders(Path(args.pred), Path(args.truth))
    else:
        raise ValueError("give PRED and TRUTH folders, or --data")
    s = {**summarize([row for image in rows for row in image]), "n_files": len(rows)}
    if args.json:
        print(json.dumps(s, indent=1))
    else:
        slices = f" ({s['n_images']} scored: stacks slice by slice)" if s["n_images"] != len(rows) else ""
        print(f"images        {len(rows)}{slices}")
        for k, label in (("dsb_score", "DSB score"), ("ap50", "AP@0.5"), ("f1", "F1"),
                         ("pq", "PQ"), ("semantic_iou", "semantic IoU")):
            print(f"{label:<13} {s[k]:.4f}")
        print(f"TP/FP/FN      {s['tp']}/{s['fp']}/{s['fn']}  (true {s['n_true']}, predicted {s['n_pred']})")
        print("(scores: means over the images scored, the DSB convention; counts: summed, at IoU > 0.5)")
    return 0
