"""Accuracy and speed of every shipped zoo model and the classical baseline, in one process.

Prints one table per data set and writes them to docs/benchmarks.md: the DSB validation
split, the held-out DSB test split, and (when ``../shared/data/nc`` is there) the MoNuSeg and
DeepLIIF test tiles. Time is the whole ``segment()`` call (preprocessing, prediction,
watershed, measurements) per megapixel on this machine's CPU, no TTA, on DSB val.

    python benchmarks/benchmark.py [--limit N] [--threads 2] [--tta] [--models a,b]
"""

import argparse
import os
import platform
import re
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from napari_nucleiseg import device as devices
from napari_nucleiseg import segment
from napari_nucleiseg.evaluation.metrics import evaluate_image, summarize
from napari_nucleiseg.inference.kinds import KINDS, image_kind
from napari_nucleiseg.inference.postprocess import classical_instances
from napari_nucleiseg.inference.preprocess import prepare_channels
from napari_nucleiseg.io.images import read_image, read_labels
from napari_nucleiseg.training.dataset import default_data_dir, find_pairs, read_ids
from napari_nucleiseg.zoo import list_models

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


SPLITS = Path(__file__).resolve().parents[1] / "splits"
TISSUE_SETS = ("MoNuSeg test", "DeepLIIF test")


def load_sets(root: Path, limit: int | None, nc_val: bool = False) -> dict[str, list]:
    """Data sets by name: ``(image, labels, kind)`` triples. DSB validation (``val.txt``) and the
    held-out DSB test split; the MoNuSeg and DeepLIIF test tiles when ``nc/`` is present, and with
    ``nc_val`` their validation tiles too (``splits/*_val.txt``, where choices are made)."""
    def pick(folder: Path, ids_file: Path):
        ids = set(read_ids(ids_file))
        pairs = [(ip, lp) for n, ip, lp in find_pairs(folder) if n in ids][:limit]
        return [(im, read_labels(lp), image_kind(im)) for im, lp in ((read_image(ip), lp) for ip, lp in pairs)]

    sets = {"DSB val": pick(root / "train", root / "val.txt"),
            "DSB test": pick(root / "train", SPLITS / "dsb2018_test.txt")}
    nc = root.parent / "nc"
    if (nc / "monuseg2018").is_dir():
        sets["MoNuSeg test"] = pick(nc / "monuseg2018", SPLITS / "monuseg2018_test.txt")
        if nc_val:
            sets["MoNuSeg val"] = pick(nc / "monuseg2018", SPLITS / "monuseg2018_val.txt")
    if (nc / "deepliif_sample").is_dir():
        sets["DeepLIIF test"] = pick(nc / "deepliif_sample", SPLITS / "deepliif_test.txt")
        if nc_val:
            sets["DeepLIIF val"] = pick(nc / "deepliif_sample", SPLITS / "deepliif_val.txt")
    return sets


def run(name, fn, sets: dict[str, list]) -> dict:
    """Scores of ``fn(image) -> labels`` on every set (and by image kind), and s/MP on DSB val."""
    out = {"name": name}
    for set_name, data in sets.items():
        rows, seconds, pixels = [], 0.0, 0
        for image, labels, _ in data:
            t0 = time.perf_counter()
            pred = fn(image)
            seconds += time.perf_counter() - t0
            pixels += labels.size
            rows.append(evaluate_image(labels, pred))
        out[set_name] = summarize(rows)
        out[set_name]["s_per_mp"] = seconds / (pixels / 1e6)
        for kind in KINDS:
            out[set_name][kind] = float(np.mean([r["ap50"] for r, (_, _, k) in zip(rows, data) if k == kind]
                                                or [np.nan]))
    out["s_per_mp"] = out["DSB val"]["s_per_mp"]
    return out


def classical(image):
    """Otsu + distance-transform watershed on the haematoxylin plane of stained images (the
    nucleus signal otherwise)."""
    return classical_instances(prepare_channels(image, channels=2)[1])


def warm_up(e, sets) -> None:
    """Load the model and its specialists and run each once, so no timing includes loading."""
    data = sets["DSB val"]
    for kind in KINDS:
        segment(next((im for im, _, k in data if k == kind), data[0][0]), model=e.name)


def model_row(e, sets) -> dict:
    """The model as ``segment()`` runs it for a user: routed to its specialists, sized."""
    warm_up(e, sets)
    return run(e.name, lambda im, n=e.name: segment(im, model=n).labels, sets)


def model_rows(e, sets, tta: bool) -> list[dict]:
    """The model (routed to its specialists, sized), without size normalisation, and with TTA."""
    rows = [model_row(e, sets)]
    if e.target_diameter():
        rows.append(run(e.name + " (diameter off)",
                        lambda im, n=e.name: segment(im, model=n, diameter=None).labels, {"DSB val": sets["DSB val"]}))
    if tta:
        rows.append(run(e.name + " + TTA", lambda im, n=e.name: segment(im, model=n, tta=True).labels,
                        {"DSB val": sets["DSB val"]}))
    return rows


def _cell(r: dict, set_name: str, key: str) -> str:
    v = r.get(set_name, {}).get(key)
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def tables(results: list[dict], sets: dict[str, list]) -> str:
    """One table per data set: a row per method, a column per score and per image kind."""
    out = []
    for set_name, data in sets.items():
        counts = {k: sum(d[2] == k for d in data) for k in KINDS}
        kinds = [k for k in KINDS if counts[k]]
        keys = ["dsb_score", "ap50", "f1", "pq", "aji"]
        head = ["method", "DSB score", "AP@0.5", "F1", "PQ", "AJI"] + [f"AP@0.5 {k} ({counts[k]})" for k in kinds]
        if set_name == "DSB val":
            head.append("s / MP")
        lines = [f"### {set_name} ({len(data)} images, {sum(d[1].size for d in data) / 1e6:.1f} MP)\n",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in results:
            if set_name not in r:
                continue
            cells = [r["name"]] + [_cell(r, set_name, k) for k in keys + kinds]
            if set_name == "DSB val":
                cells.append(f"{r['s_per_mp']:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def machine_text(threads: int) -> str:
    """What is known of the machine at the start of the run (this host is shared and noisy): the
    device ``segment()`` picks ("auto"), its torch threads and numeric mode, the cores, the load."""
    from napari_nucleiseg.device import autocast_dtype, describe, resolve_device

    load = os.getloadavg()[0]
    device = resolve_device(None)
    if device.type == "cpu":
        features = cpu_features()
        mode = "bf16 autocast" if autocast_dtype(device) else "float32"
        if "bf16" in features and not autocast_dtype(device):
            mode += " (bf16 turned off: --float32)"
        what = f"CPU ({features}), {threads} torch thread{'s' * (threads != 1)}, {mode}"
    else:
        what = describe(device)
    return f"{what}; {os.cpu_count()} CPU cores, 1-minute load average {load:.2f} at the start of the run"


def use_float32() -> None:
    """No bf16 autocast for the rest of the process, even where the CPU computes it (``--float32``)."""
    devices.cpu_has_bf16 = lambda: False  # autocast_dtype reads it at each call


def cpu_features() -> str:
    """The widest vector instructions of this CPU (its speed, and the bf16 mode, depend on them)."""
    flags = devices.cpu_flags()
    if not flags:
        return "features unknown"
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return widest + (f" with {' and '.join(bf16)}" if bf16 else ", no native bf16")


def card_test_scores(result: dict) -> dict:
    """A card's ``test`` field from one model's result row: the scores of each data set other than
    DSB val (the row's other dicts, such as the model's card in zoo_comparison, are left out)."""
    return {k: {m: round(v, 4) if isinstance(v, float) else v for m, v in result[k].items()}
            for k in result if isinstance(result[k], dict) and "dsb_score" in result[k] and k != "DSB val"}


#: How a set's figures are made from its images (``metrics.summarize``).
AGGREGATION = "scores are means over images; tp, fp and fn are summed"
#: the scores of a card's ``validation`` block that a benchmark run measures again
VALIDATION_KEYS = ("dsb_score", "ap50", "f1", "pq", "aji", "semantic_iou", "tp", "fp", "fn", "n_images")


def command_line() -> str:
    """This run's command as it can be typed again (a user-model folder included)."""
    env = f"NUCLEISEG_USER_DIR={os.environ['NUCLEISEG_USER_DIR']} " if os.environ.get("NUCLEISEG_USER_DIR") else ""
    return env + "python benchmarks/" + " ".join([Path(sys.argv[0]).name] + sys.argv[1:])


def update_cards(results: list[dict], threads: int, machine: str) -> None:
    """Record each shipped model's measured speed, test scores and validation scores in its card,
    with this run's command."""
    import json

    command = command_line()

    for e, r in ((e, r) for r in results for e in list_models() if e.name == r["name"] and not e.user):
        card_path = e.weights.with_suffix(".json")
        card = json.loads(card_path.read_text())
        card["speed"] = {"seconds_per_mp": round(r["s_per_mp"], 3), "device": machine,
                         "includes": "whole segment() call: preprocessing, tiled prediction, "
                                     "watershed, per-nucleus table; no TTA",
                         "command": command}
        card["test"] = card_test_scores(r)
        # the validation figures the README and `nucleiseg zoo` quote: from this same run (other
        # fields of the block, such as the confidence AUROC, come from the release and stay)
        old = card.get("validation", {})
        measured = f"{machine}, {date.today()}, {command}"
        if "confidence_auroc" in old:
            measured += "; confidence_auroc from the release"
        card["validation"] = {**old, **{k: v for k, v in r["DSB val"].items() if k in VALIDATION_KEYS},
                              "aggregation": AGGREGATION, "measured": measured}
        card_path.write_text(json.dumps(card, indent=1))


def start(threads: int, limit: int | None) -> tuple[str, dict[str, list]]:
    """Set the torch threads; the machine's description and the data sets (exits without the data)."""
    torch.set_num_threads(threads)
    machine = machine_text(threads)
    root = default_data_dir()
    if not (root / "train").is_dir():
        raise SystemExit(f"shared DSB data not found at {root}: nothing to benchmark")
    return machine, load_sets(root, limit)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="images per data set")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tta", action="store_true", help="also run each model with TTA (DSB val)")
    ap.add_argument("--models", default=None, help="comma-separated zoo models (default: every shipped one)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--update-cards", action="store_true",
                    help="record the measured s/MP and the test-split scores in the shipped models' cards")
    ap.add_argument("--float32", action="store_true",
                    help="no bf16 autocast even where the CPU computes it (figures comparable with float32 hosts)")
    ap.add_argument("--pages-only", action="store_true",
                    help="measure nothing: copy the hand-written pages (speed.md, ...) into docs/benchmarks.md again")
    args = ap.parse_args()
    if args.pages_only:
        return refresh_pages()
    if args.float32:
        use_float32()
    machine, sets = start(args.threads, args.limit)
    chosen = set(args.models.split(",")) if args.models else None
    results = [run("classical Otsu + distance watershed", classical, sets)]
    for e in list_models():
        if e.user and (chosen is None or e.name not in chosen):
            continue
        if "specialist" in e.card or (chosen is not None and e.name not in chosen):
            continue  # specialists run inside their parent's row
        results.extend(model_rows(e, sets, args.tta))
    table = tables(results, sets)
    print(table)
    if args.update_cards:
        update_cards(results, args.threads, machine)
    if not args.no_write:
        write_report(table, sets, machine)


def write_report(table: str, sets: dict, machine: str) -> None:
    cpu = platform.processor() or platform.machine()
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(
        f"# Benchmarks\n\n## Accuracy and speed per data set\n\n"
        f"Measured {date.today()} on {cpu} ({machine}). Data sets: the 58 DSB 2018 validation "
        f"images (`val.txt`; choices were made on them), the seeded DSB test split "
        f"(`splits/dsb2018_test.txt`; 9 of its 53 images were among the 60 that `resunet32`'s and `unet16`'s "
        f"post-processing and `segment()`'s outline-refinement weight were tuned on, see "
        f"docs/training_log.md; no choice looks at it since), the 14 MoNuSeg 2018 challenge-test H&E "
        f"tiles and 2 DeepLIIF IHC test tiles (`splits/`, non-commercial data under `../shared/data/nc`; "
        f"only models whose cards say so were trained on the other tiles of those sets). "
        f"Time is the whole `segment()` call (preprocessing, tiled prediction, watershed, "
        f"per-nucleus table) on DSB val, no test-time augmentation. AP@0.5 is TP/(TP+FP+FN) at IoU 0.5, "
        f"as in the DSB score; every score is the mean over a set's images (TP/FP/FN counts are summed); "
        f"AJI is the aggregated Jaccard index of the pathology papers; the last "
        f"columns split AP@0.5 by image kind (`kinds.image_kind`). A model whose card names "
        f"specialists hands those kinds of image to them, as `segment()` does. Images whose nuclei are "
        f"larger than the model's training size are segmented shrunk to it (`sizing.py`); the "
        f"\"diameter off\" rows are the same models without that. The classical baseline thresholds "
        f"the haematoxylin plane of stained images; its time is Otsu and watershed only, without the "
        f"per-nucleus table the models' time includes (about 0.05 s/MP more).\n\n"
        f"Reproduce: `python benchmarks/{' '.join(['benchmark.py'] + sys.argv[1:])}`\n\n{table}\n"
    )
    with DOCS.open("a") as f:
        f.write(hand_written_pages())


#: pages written by hand (notes on the host and on each run stay there) that the report carries
PAGES = ("speed.md", "zoo_comparison.md", "stain_input.md", "robustness.md", "batch_benchmark.md", "outofcore.md")


#: where the report's measured part ends and the copies of the hand-written pages begin
PAGES_MARK = "<!-- the hand-written pages below: python benchmarks/benchmark.py --pages-only copies them again -->"


def hand_written_pages() -> str:
    """The ``PAGES`` found in docs/, each one heading level down, after ``PAGES_MARK``, as the report ends."""
    text = "\n" + PAGES_MARK + "\n"
    for name in PAGES:
        report = DOCS.parent / name
        if report.exists():
            text += "\n" + re.sub(r"^(#+) ", r"#\1 ", report.read_text(), flags=re.M)
    return text


def refresh_pages() -> None:
    """Copy the hand-written pages into the report again, keeping its measured part (up to
    ``PAGES_MARK``, or in a report written before the mark, up to the first page's heading)."""
    report = DOCS.read_text()
    end = report.find("\n" + PAGES_MARK)
    if end < 0:
        headings = [line for line in hand_written_pages().splitlines() if line.startswith("## ")]
        found = [i for i in (report.find("\n" + h + "\n") for h in headings) if i >= 0]
        end = min(found, default=-1)
    if end < 0:
        raise SystemExit(f"{DOCS}: no '{PAGES_MARK}' to copy the pages after; run the benchmark again")
    DOCS.write_text(report[:end] + hand_written_pages())


if __name__ == "__main__":
    main()
