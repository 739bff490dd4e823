"""The architecture source a package carries: one standalone Python file (needs torch alone) made
from ``models/blocks.py`` and the architecture's own module, so that a package's state dict loads
without napari-nucleiseg installed."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from ..errors import PackageError

#: The file name of the architecture source inside a package.
SOURCE_NAME = "nucleiseg_architecture.py"


def _parts(path: Path) -> tuple[list[str], list[str], list[str]]:
    """``(absolute imports, relative modules imported, body lines)`` of one module; the body
    without its docstring and import statements."""
    text = path.read_text()
    tree = ast.parse(text)
    lines = text.splitlines()
    drop, imports, relative = set(), [], []
    for i, node in enumerate(tree.body):
        doc = i == 0 and isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant)
        if not (doc or isinstance(node, (ast.Import, ast.ImportFrom))):
            continue
        drop.update(range(node.lineno - 1, node.end_lineno))
        if isinstance(node, ast.ImportFrom) and node.level:
            relative.append(node.module or "")
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", None) != "__future__":
            imports.append(ast.get_source_segment(text, node))
    body = [line for n, line in enumerate(lines) if n not in drop]
    return imports, relative, body


def architecture_source(arch: str) -> tuple[str, str]:
    """``(source text, class name)`` of architecture ``arch`` as one standalone file.

    Raises
    ------
    errors.PackageError
        When the architecture's module imports a sibling other than ``blocks`` (it could not run
        on its own).
    """
    from .. import __version__
    from ..models import ARCHITECTURES

    if arch not in ARCHITECTURES:
        raise PackageError(f"architecture {arch!r} is not one of ours ({', '.join(sorted(ARCHITECTURES))})")
    cls = ARCHITECTURES[arch]
    module = Path(sys.modules[cls.__module__].__file__)
    blocks = module.with_name("blocks.py")
    imports, relative, body = _parts(module)
    if any(r != "blocks" for r in relative):
        raise PackageError(f"{module.name}: imports {relative}; only models/blocks.py can be joined into "
                           "one architecture source file")
    block_imports, _, block_body = _parts(blocks)
    header = [f'"""Architecture {cls.__name__} ({arch!r}) of napari-nucleiseg {__version__}, standalone: '
              f'models/blocks.py and models/{module.name} in one file. Needs torch alone."""', "",
              "from __future__ import annotations", ""]
    imports = list(dict.fromkeys(block_imports + imports))
    text = "\n".join(header + imports + block_body + ["", ""] + body).rstrip() + "\n"
    return _tidy(text), cls.__name__


def _tidy(text: str) -> str:
    """At most two blank lines in a row (the joined modules' import gaps)."""
    out, blank = [], 0
    for line in text.splitlines():
        blank = blank + 1 if not line.strip() else 0
        if blank <= 2:
            out.append(line)
    return "\n".join(out) + "\n"
