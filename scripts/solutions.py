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
import copy
import re
import sys
from pathlib import Path

import nbformat

STUB = re.compile(r"#\s*your (code|function) here")
SOLUTION = re.compile(r"<summary>\s*Solution\s*</summary>(.*?)</details>", re.S)
CODE = re.compile(r"```python\n(.*?)```", re.S)
NOT_DONE = "Not done yet"

__all__ = ["solved", "unsolved_outputs"]


def _solutions(cell) -> list[str]:
    if cell.cell_type != "markdown":
        return []
    return [code for block in SOLUTION.findall(cell.source) for code in CODE.findall(block)]


def solved(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with each Solution block's code in place of the nearest stub cell above it.

    Raises ``ValueError`` naming the cell when a Solution has no stub of its own above it (after
    the previous Solution), or a stub is left without a Solution: the pairing is the lesson's
    contract, and a broken one would let an exercise go untested.
    """
    nb = copy.deepcopy(nb)
    stubs: list[int] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and STUB.search(cell.source):
            stubs.append(i)
        for code in _solutions(cell):
            if not stubs:
                raise ValueError(f"cell {i}: a Solution with no stub cell above it")
            nb.cells[stubs.pop()].source = code.rstrip("\n")
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
            if NOT_DONE in text:
                found.append(i)
                break
    return found


def main() -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    from execute_lessons import BUILD, executed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    args = parser.parse_args()
    failed = 0
    for path in (p.resolve() for p in args.notebooks):
        copy_path = path.with_name(f".solved_{path.name}")  # beside the lesson: it runs where the lesson runs
        nbformat.write(solved(nbformat.read(path, as_version=4)), copy_path)
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
        correct = sum("Correct" in out.get("text", "") for out in outputs)
        print(f"{path.name}: {correct} checks said Correct; cells still not done: {left or 'none'}")
        failed += bool(left)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
