"""Make the shipped sample images (seeded, so the files are reproducible).

    python sample_data/make_samples.py
"""

import argparse
from pathlib import Path

import tifffile

from napari_nucleiseg.synthetic import synthetic_nuclei

HERE = Path(__file__).parent
SAMPLES = {
    "sparse_nuclei": dict(shape=(256, 256), n_nuclei=25, touching=0.0, seed=1),
    "touching_nuclei": dict(shape=(256, 320), n_nuclei=45, touching=0.7, seed=2),
    "crowded_field": dict(shape=(384, 384), n_nuclei=120, radius=(6, 10), touching=0.6, seed=3),
}


def main():
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    for name, kw in SAMPLES.items():
        image, labels = synthetic_nuclei(**kw)
        tifffile.imwrite(HERE / f"{name}.tif", image, compression="zlib")
        (HERE / "ground_truth").mkdir(exist_ok=True)
        tifffile.imwrite(HERE / "ground_truth" / f"{name}.tif", labels.astype("uint16"), compression="zlib")
        print(f"{name}: {image.shape}, {labels.max()} nuclei")


if __name__ == "__main__":
    main()
