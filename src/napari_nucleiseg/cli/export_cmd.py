"""``nucleiseg export MODEL --bioimageio OUT.zip``: a zoo model as a bioimage.io model package."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("export", help="write a zoo model as a bioimage.io model package (needs the "
                                      "[bioimageio] extra)")
    p.add_argument("model", help="a shipped or user model (see `nucleiseg zoo`)")
    p.add_argument("--bioimageio", required=True, metavar="OUT.zip", help="the package to write (spec 0.5)")
    p.add_argument("--author", action="append", default=None, metavar="NAME",
                   help="an author of the package (repeat for several; default: the napari-nucleiseg developers)")
    p.add_argument("--maintainer", action="append", default=None, metavar="GITHUB_USER",
                   help="a maintainer's GitHub user name (repeat for several)")
    p.add_argument("--no-test", action="store_true",
                   help="skip bioimageio.core's test of the package (its test tensors through every weights format)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bioimageio.export import export_package

    out = export_package(args.model, args.bioimageio, authors=args.author, maintainers=args.maintainer,
                         test=not args.no_test)
    tested = "" if args.no_test else " (passes bioimageio test)"
    print(f"wrote {out}: model {args.model!r} as a bioimage.io package{tested}")
    return 0
