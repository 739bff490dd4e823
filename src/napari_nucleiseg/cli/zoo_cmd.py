"""``nucleiseg zoo``: list models with their card figures."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("zoo", help="list the models with their validation scores and speed; "
                                   "`zoo import PACKAGE.zip` adds a bioimage.io model")
    p.set_defaults(func=run)
    zsub = p.add_subparsers(dest="zoo_command")
    imp = zsub.add_parser("import", help="add a bioimage.io nuclei model package (.zip) to your models "
                                         "(needs the [bioimageio] extra)")
    imp.add_argument("package", help="a local bioimage.io model package (.zip)")
    imp.add_argument("--name", default=None, help="the new model's name (default: the file name)")
    imp.set_defaults(func=run_import)


def run_import(args) -> int:
    from ..bioimageio.package_import import import_package

    entry = import_package(args.package, name=args.name)
    info = entry.card["imported"]
    print(f"imported {args.package} as model {entry.name!r} ({info['weights']} weights, outputs "
          f"{', '.join(entry.card['outputs'])}; licence {entry.licence or 'not given'})")
    return 0


def _models_and_skipped():
    """The models, and one line per user-model file that was skipped as broken."""
    import warnings

    from ..zoo import list_models

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models = list_models()
    return models, [str(w.message) for w in caught if "model skipped" in str(w.message)]


def _dig(card: dict, *keys):
    """``card[k1][k2]...``, None where a level is missing or not an object (a user card may hold
    anything: one odd field must not break the listing)."""
    for key in keys:
        if not isinstance(card, dict):
            return None
        card = card.get(key)
    return card


def run(args) -> int:
    from ..zoo.catalog import is_number

    models, skipped = _models_and_skipped()
    rows = [("name", "architecture", "params", "val DSB", "AP@0.5", "test DSB", "MoNuSeg DSB", "s/MP (CPU)",
             "train min", "nucleus px", "kind", "licence")]
    for e in models:
        c = e.card
        v = c.get("validation", {})
        target = e.target_diameter()
        fmt = lambda x, f=".3f": format(x, f) if is_number(x) else "-"  # noqa: E731
        params, minutes = _dig(c, "parameters"), _dig(c, "training", "seconds")
        rows.append((
            e.name + (" (default)" if c.get("default") else ""),
            str(c.get("architecture", "?")),
            f"{params / 1e6:.2f} M" if is_number(params) else "-",
            fmt(v.get("dsb_score")),
            fmt(v.get("ap50")),
            fmt(_dig(c, "test", "DSB test", "dsb_score")),
            fmt(_dig(c, "test", "MoNuSeg test", "dsb_score")),
            fmt(_dig(c, "speed", "seconds_per_mp")),
            fmt(minutes / 60 if is_number(minutes) and minutes else None, ".0f"),
            f"{target:g}" if target else "-",
            "imported" if "imported" in c else "user" if e.user else "shipped",
            str(e.licence or "-"),
        ))
    notes = [f"{e.name}: used by {e.card['specialist'].get('parent')} for {e.card['specialist'].get('kind')} "
             "images (its figures are on those validation images only)"
             for e in models if isinstance(e.card.get("specialist"), dict)]
    notes += [f"{e.name}: imported from {e.card['imported'].get('file')} (bioimage.io package "
              f"{e.card['imported'].get('package')!r}, {e.card['imported'].get('weights')} weights, outputs "
              f"{', '.join(map(str, e.card.get('outputs') or []))})"
              for e in models if isinstance(e.card.get("imported"), dict)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(s.ljust(w) for s, w in zip(r, widths)).rstrip())
    for n in notes:
        print(n)
    for line in skipped:
        print(f"broken: {line}")
    print("test DSB / MoNuSeg DSB: the held-out DSB test split and the MoNuSeg challenge-test tiles "
          "(benchmarks/benchmark.py); train min: minutes of training behind the weights")
    print("nucleus px: the nucleus diameter a model was trained at; images with larger nuclei are "
          "segmented shrunk to it (--diameter off: never)")
    return 0
