"""A lesson as a learner who did every exercise runs it: each model answer pasted into its stub.

Every exercise is a stub cell (``# your code here``), a self-check cell, a hint and a model
answer in a ``<details><summary>Solution</summary>`` block. The lessons are executed with the
stubs, which only exercises the checks' "not done yet" path. ``solved(nb)`` returns a copy in which
each stub cell holds the code of the next Solution block instead, so that executing it proves
every check accepts its own model answer and that the lesson still runs on with the learner's
code in place of the package's fallbacks. ``unsolved_outputs(nb)`` lists the cells of an executed
copy that still say "Not done yet".

``python scripts/solutions.py NOTEBOOK ...`` executes solved copies here (into
``build/solved/``) and prints what each check said.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from pathlib import Path

import nbformat

STUB = re.compile(r"#\s*your (code|function) here")
SOLUTION = re.compile(r"<summary>\s*Solution\s*</summary>(.*?)</details>", re.S)
CODE = re.compile(r"```python\n(.*?)```", re.S)
NOT_DONE = re.compile(r"not done yet", re.I)

__all__ = ["solved", "unsolved_outputs"]


def _solutions(cell) -> list[str]:
    if cell.cell_type != "markdown":
        return []
    return [code for block in SOLUTION.findall(cell.source) for code in CODE.findall(block)]


def _names_bound(statement: ast.stmt) -> set[str]:
    """The names a top-level statement binds (not those bound inside a function or class body)."""
    names, todo = set(), [statement]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        todo.extend(ast.iter_child_nodes(node))
    return names


def _answered(stub: str, solution: str) -> str:
    """The stub cell as a learner leaves it: each statement the solution rebinds is replaced by the
    solution; what the cell gives around it (imports, helpers, calls) stays where it was."""
    given = ast.parse(stub).body
    written = set().union(*map(_names_bound, ast.parse(solution).body))
    lines, kept, placed = stub.splitlines(), [], False
    for statement in given:
        if _names_bound(statement) & written:
            if not placed:
                kept.append(solution.rstrip("\n"))
                placed = True
            continue
        start = statement.lineno - 1
        while start > 0 and lines[start - 1].lstrip().startswith("@"):  # a decorator line belongs to its def
            start -= 1
        kept.append("\n".join(lines[start : statement.end_lineno]))
    if not placed:
        kept.append(solution.rstrip("\n"))
    return "\n\n".join(kept)


def solved(nb: nbformat.NotebookNode, my_photo: Path | None = None) -> nbformat.NotebookNode:
    """A copy of ``nb`` with each Solution block's code written into the nearest stub cell above it.

    The solution replaces the statements of the stub cell that bind the names it binds; the rest of
    the cell stays. ``my_photo``, where given, is the photo an exercise asks the learner to bring
    (``MY_PHOTO = ...``). Raises ``ValueError`` naming the cells when a Solution has no stub of its
    own above it (after the previous Solution), or a stub is left without a Solution: the pairing is
    the lessons' contract, and a broken one would let an exercise go untested.
    """
    nb = copy.deepcopy(nb)
    stubs: list[int] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and STUB.search(cell.source):
            stubs.append(i)
        for code in _solutions(cell):
            if not stubs:
                raise ValueError(f"cell {i}: a Solution with no stub cell above it")
            if my_photo is not None:
                code = re.sub(r"^MY_PHOTO = .*$", f"MY_PHOTO = {str(my_photo)!r}", code, flags=re.M)
            stub = nb.cells[stubs.pop()]
            stub.source = _answered(stub.source, code)
            if stubs:
                raise ValueError(f"cells {stubs}: stubs with no Solution before the next exercise's")
    if stubs:
        raise ValueError(f"cells {stubs}: stubs with no Solution")
    return nb


def unsolved_outputs(nb: nbformat.NotebookNode) -> list[int]:
    """The cells of an executed notebook whose printed output says the exercise is not done."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            text = out.get("text", "") or "".join(out.get("data", {}).get("text/plain", ""))
            if NOT_DONE.search(text):
                found.append(i)
                break
    return found


def make_my_photo(dest: Path) -> Path:
    """A real photo that no bundled file is cut from (scikit-image's motorcycle, saved elsewhere as a
    JPEG), for the exercise that asks the learner for a photo of their own."""
    from PIL import Image
    from skimage import data

    Image.fromarray(data.stereo_motorcycle()[0]).save(dest, quality=90)
    return dest


def main() -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    from execute_lessons import BUILD, executed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    args = parser.parse_args()
    failed = 0
    BUILD.mkdir(parents=True, exist_ok=True)  # a fresh clone has no build/ yet
    photo = make_my_photo(BUILD / "my_photo.jpg")
    for path in (p.resolve() for p in args.notebooks):
        copy_path = path.with_name(f".solved_{path.name}")  # beside the lesson: it runs where the lesson runs
        nbformat.write(solved(nbformat.read(path, as_version=4), my_photo=photo), copy_path)
        try:
            nb = executed(copy_path, cache=BUILD / "solved")
        except RuntimeError as err:
            print(f"{path.name}: FAILS with the model answers in place\n{str(err)[-3000:]}")
            failed += 1
            continue
        finally:
            copy_path.unlink()
        left = unsolved_outputs(nb)
        outputs = [out for cell in nb.cells for out in cell.get("outputs", [])]
        correct = sum("correct" in out.get("text", "").lower() for out in outputs)
        print(f"{path.name}: {correct} outputs say correct; cells still not done: {left or 'none'}")
        failed += bool(left)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
