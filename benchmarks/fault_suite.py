"""The fault suite: bad options and files, full and read-only disks, killed workers, a lost Dask
scheduler, hostile and broken model files, each tried as a careful user would; prints a table
(case, expected, observed, pass) and exits 1 when any case fails.

    python benchmarks/fault_suite.py             # every case (about 2 minutes on 2 cores)
    python benchmarks/fault_suite.py --ci        # the cases tests/test_faults.py runs in CI
    python benchmarks/fault_suite.py --markdown  # the table as Markdown (docs/faults.md)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fault_cases_batch  # noqa: E402,F401  (registers its cases)
import fault_cases_io  # noqa: E402,F401
from fault_helpers import CASES, Case, short  # noqa: E402


def run_case(c: Case) -> dict:
    """Run one case in a fresh temporary folder; an exception is a failed case."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fault-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            observed, passed = c.run(Path(tmp))
        except Exception as exc:  # a case that crashes has found a fault too
            observed, passed = f"raised {type(exc).__name__}: {short(str(exc))}", False
            traceback.print_exc()
    return {"case": c.name, "expected": c.expected, "observed": observed, "pass": bool(passed),
            "seconds": round(time.perf_counter() - t0, 1)}


def table(rows: list[dict], markdown: bool) -> str:
    cols = ["case", "expected", "observed", "pass", "seconds"]
    cells = [[str(r[c]) if c != "pass" else ("yes" if r[c] else "NO") for c in cols] for r in rows]
    if markdown:
        esc = [[v.replace("|", "\\|") for v in row] for row in cells]
        return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                         + ["| " + " | ".join(row) + " |" for row in esc])
    widths = [min(60, max(len(c), *(len(row[i]) for row in cells))) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ci", action="store_true", help="only the cases CI runs")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("-k", default="", help="only cases whose name contains this text")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    chosen = [c for c in CASES if (c.ci or not args.ci) and args.k.lower() in c.name.lower()]
    rows = []
    for c in chosen:
        rows.append(run_case(c))
        print(f"{'pass' if rows[-1]['pass'] else 'FAIL'}  {c.name} ({rows[-1]['seconds']} s)", file=sys.stderr)
    print(table(rows, args.markdown))
    failed = [r["case"] for r in rows if not r["pass"]]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} cases pass" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
