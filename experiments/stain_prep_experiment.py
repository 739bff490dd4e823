"""Which grey conversion suits stained (colour bright-field) images? Adapt and compare.

For each conversion, the default model is scored on the stained validation images, adapted
for a few hundred steps on the stained training images, and scored again. Writes
docs/stain_input.md (appended to docs/benchmarks.md by benchmark.py), with the numbers of stained
training and validation images each conversion actually used (``kinds.image_kind`` picks
them); it chose the darkest channel (``preprocess.nucleus_signal``).

    python experiments/stain_prep_experiment.py --steps 250
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from skimage.color import rgb2hed

from napari_nucleiseg.evaluation.evaluate import evaluate_model
from napari_nucleiseg.inference.kinds import image_kind
from napari_nucleiseg.inference.preprocess import normalize, to_grey
from napari_nucleiseg.io.images import read_image, read_labels
from napari_nucleiseg.training.dataset import Sample, default_data_dir, read_ids
from napari_nucleiseg.training.trainer import Trainer
from napari_nucleiseg.zoo import load_model, load_weights_file

DOCS = Path(__file__).resolve().parents[1] / "docs" / "stain_input.md"

CONVERSIONS = {
    "inverted luminance": lambda rgb: to_grey(rgb).max() - to_grey(rgb),
    "hematoxylin (rgb2hed)": lambda rgb: rgb2hed(rgb)[..., 0].astype(np.float32),
    "darkest channel": lambda rgb: (255 - rgb.min(-1)).astype(np.float32),
}


def stained_samples(convert):
    val_ids = set(read_ids(default_data_dir() / "val.txt"))
    root = default_data_dir() / "train"
    train, val = [], []
    for p in sorted((root / "images").iterdir()):
        im = read_image(p)
        if image_kind(im) != "stained":
            continue
        lab = read_labels(next((root / "labels").glob(p.stem + ".*")))
        (val if p.stem in val_ids else train).append(Sample(normalize(convert(im[..., :3])), lab, p.stem))
    return train, val


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--model", default="resunet32", help="zoo model (its post-processing is used)")
    ap.add_argument("--weights", default=None,
                    help="weights file to start from instead of the model's own (e.g. an earlier version)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    lines = ["| conversion | training images | validation images | DSB before | DSB after | AP@0.5 after | seconds |",
             "|---|---|---|---|---|---|---|"]
    print("\n".join(lines))
    counts = {}  # conversion -> (training, validation) images it used
    for name, convert in CONVERSIONS.items():
        train, val = stained_samples(convert)
        counts[name] = (len(train), len(val))
        _, entry, dev = load_model(args.model)
        # a trainable copy: load_model's is cached, and its batch norms are folded
        model = load_weights_file(args.weights or entry.weights)[0].to(dev)
        post = entry.postprocess()
        before = evaluate_model(model, val, dev, post)["dsb_score"]
        trainer = Trainer(model, train, dev, args.steps, lr=3e-4, seed=1)
        t0 = time.time()
        for _ in range(args.steps):
            trainer.step()
        after = evaluate_model(trainer.model, val, dev, post)
        lines.append(f"| {name} | {len(train)} | {len(val)} | {before:.3f} | {after['dsb_score']:.3f} | "
                     f"{after['ap50']:.3f} | {time.time() - t0:.0f} |")
        print(lines[-1], flush=True)
    DOCS.write_text(report_text(lines, counts, args.model, args.weights, args.steps))


def report_text(lines: list[str], counts: dict, model: str, weights: str | None, steps: int) -> str:
    """docs/stain_input.md from the table ``lines`` and ``counts`` (conversion -> training, validation images)."""
    if len(set(counts.values())) == 1:
        n_train, n_val = next(iter(counts.values()))
        used = f"{n_train} training, {n_val} validation"
    else:  # cannot happen while image_kind looks at the raw image, but then say so rather than pick one
        used = "per conversion, " + "; ".join(f"{k}: {t} training, {v} validation" for k, (t, v) in counts.items())
    return (
        "# Input channel for stained images\n\n"
        f"Stained (colour bright-field) images of the DSB split (`kinds.image_kind`): {used}. "
        f"Each conversion to one nucleus-bright channel: the `{model}` model"
        + (f" (weights `{weights}`)" if weights else "") + " scored on the validation "
        f"images as is, then after {steps} adaptation steps (learning rate 3e-4) on the training "
        "images in that conversion, and scored again. The shipped models use the darkest channel for "
        "stained images (`preprocess.nucleus_signal`).\n\n"
        f"Reproduce: `python experiments/stain_prep_experiment.py --steps {steps} --model {model}"
        + (f" --weights {weights}" if weights else "") + "`\n\n"
        + "\n".join(lines) + "\n"
    )

if __name__ == "__main__":
    main()
