"""The papers' comparison table, reproduced: zoo architectures trained under one recipe, scored
in one process on every data set, with their parameters, speed and training time.

Each model is segmented the way ``segment()`` does for a user (sized to its card's nucleus
diameter, routed to its specialists if its card names any). Scores, s/MP and the table come from
``benchmark.run``; training time and steps from each card. The table replaces the one between
the markers in ``docs/zoo_comparison.md`` (the discussion around it is written by hand).

    python benchmarks/zoo_comparison.py --models resnet18-unet,resnet34-unet,... [--threads 2]

Models not in the shipped zoo are looked up in the user-models folder: point
``NUCLEISEG_USER_DIR`` at ``checkpoints/recipe`` for the recipe runs of the architectures whose
shipped weights were trained longer.
"""

import argparse
from pathlib import Path

from benchmark import classical, command_line, model_row, run, start, update_cards

from napari_nucleiseg.zoo import get_entry

REPORT = Path(__file__).resolve().parents[1] / "docs" / "zoo_comparison.md"
BEGIN, END = "<!-- comparison table: benchmarks/zoo_comparison.py -->", "<!-- end of table -->"
SETS = ("DSB val", "DSB test", "MoNuSeg test", "DeepLIIF test")


def training_cells(card: dict) -> list[str]:
    """Optimiser steps and minutes of training of a card (its stages summed)."""
    t = card.get("training", {})
    steps = t.get("steps")
    minutes = t.get("seconds", 0) / 60
    return [f"{steps:,}" if steps else "-", f"{minutes:.0f}" if minutes else "-"]


def table(results: list[dict], sets: dict) -> str:
    """One row per model: architecture, size, training, DSB score (and AP@0.5) per set, speed."""
    present = [s for s in SETS if s in sets]
    head = (["model", "architecture", "parameters", "training steps", "training min"]
            + [f"{s} DSB / AP@0.5" for s in present] + ["DSB val semantic IoU", "s / MP"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        card = r.get("card", {})
        arch = card.get("architecture", "classical")
        params = f"{card['parameters'] / 1e6:.2f} M" if card.get("parameters") else "-"
        scores = [f"{r[s]['dsb_score']:.3f} / {r[s]['ap50']:.3f}" if s in r else "" for s in present]
        cells = [r["name"], arch, params] + (training_cells(card) if card else ["-", "-"]) + scores
        iou = f"{r['DSB val']['semantic_iou']:.3f}"
        lines.append("| " + " | ".join(cells + [iou, f"{r['s_per_mp']:.2f}"]) + " |")
    return "\n".join(lines)


def write(text: str, command: str, machine: str) -> None:
    """Replace the table between the markers of the report (or start the report)."""
    block = f"{BEGIN}\n\nMeasured on {machine}.\nReproduce: `{command}`\n\n{text}\n\n{END}"
    old = REPORT.read_text() if REPORT.exists() else f"# Zoo comparison\n\n{BEGIN}\n{END}\n"
    head, _, rest = old.partition(BEGIN)
    _, _, tail = rest.partition(END)
    REPORT.write_text(head + block + tail)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", required=True, help="comma-separated zoo (or user) models")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="images per data set")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--update-cards", action="store_true",
                    help="record the measured s/MP and test-split scores in the shipped models' cards")
    args = ap.parse_args(argv)
    machine, sets = start(args.threads, args.limit)
    results = [run("classical Otsu + distance watershed", classical, sets)]
    for name in args.models.split(","):
        entry = get_entry(name)
        row = model_row(entry, sets)
        row["card"] = entry.card
        results.append(row)
        print(table(results[-1:], sets).splitlines()[-1], flush=True)
    text = table(results, sets)
    print(text)
    if args.update_cards:
        update_cards(results, args.threads, machine)
    if not args.no_write:
        write(text, command_line(), machine)


if __name__ == "__main__":
    main()
