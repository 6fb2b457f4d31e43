"""The model answers written into the lessons' stubs (``scripts/solutions.py``), as the Colab run does."""

from __future__ import annotations

import hashlib

import nbformat
import pandas as pd
import pytest
import solutions
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import REPO

LESSONS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _solution(code: str) -> str:
    hint = "<details><summary>Hint</summary>\n\nthink\n</details>\n\n"
    return f"{hint}<details><summary>Solution</summary>\n\n```python\n{code}```\n\nWhy.\n</details>"


def _lesson(*cells) -> nbformat.NotebookNode:
    made = [new_code_cell(c) if kind == "code" else new_markdown_cell(c) for kind, c in cells]
    return new_notebook(cells=made)


def test_an_answer_replaces_what_it_rebinds_and_keeps_the_rest_of_the_stub_cell():
    stub = (
        "import numpy as np\n\n"
        "def helper(x):\n    return x + 1\n\n\n"
        "@staticmethod\ndef mine(x):\n    return None  # your code here\n\n"
        "a, b = None, None  # your code here\n"
        "print(mine(1))\n"
    )
    answer = "def mine(x):\n    return helper(x) * 2\n\nwith open('f') as f:\n    a = 1\nb = 2\n"
    nb = _lesson(("code", stub), ("code", "check()"), ("markdown", _solution(answer)))
    done = solutions.solved(nb)
    assert done.cells[0].source == (
        "import numpy as np\n\n"
        "def helper(x):\n    return x + 1\n\n"
        "def mine(x):\n    return helper(x) * 2\n\nwith open('f') as f:\n    a = 1\nb = 2\n\n"
        "print(mine(1))"
    )
    assert nb.cells[0].source == stub  # the lesson itself is left alone
    assert [c.source for c in done.cells[1:]] == [c.source for c in nb.cells[1:]]


def test_each_answer_goes_to_the_stub_of_its_own_exercise():
    nb = _lesson(
        ("code", "x = None  # your code here"),
        ("markdown", _solution("x = 1\n")),
        ("code", "def f():\n    pass  # your code here"),
        ("code", "print('check')"),
        ("markdown", _solution("def f():\n    return 2\n")),
    )
    done = solutions.solved(nb)
    assert done.cells[0].source == "x = 1"
    assert done.cells[2].source == "def f():\n    return 2"


@pytest.mark.parametrize(
    "cells, message",
    [
        ([("markdown", _solution("x = 1\n"))], "no stub cell above"),
        ([("code", "x = None  # your code here")], "stubs with no Solution"),
        (
            [
                ("code", "x = None  # your code here"),
                ("code", "y = None  # your code here"),
                ("markdown", _solution("y = 1\n")),
            ],
            "before the next exercise",
        ),
    ],
)
def test_a_broken_pairing_is_refused_by_cell(cells, message):
    with pytest.raises(ValueError, match=message):
        solutions.solved(_lesson(*cells))


def test_the_learners_photo_replaces_the_placeholder(tmp_path):
    photo = solutions.make_my_photo(tmp_path / "mine.jpg")
    bundled = set(pd.read_csv(REPO / "data" / "manifest.csv")["sha256"])
    assert hashlib.sha256(photo.read_bytes()).hexdigest() not in bundled
    answer = _solution('MY_PHOTO = "/content/x.jpg"  # in Colab\n')
    nb = _lesson(("code", "MY_PHOTO = None  # your code here"), ("markdown", answer))
    assert solutions.solved(nb, my_photo=photo).cells[0].source == f"MY_PHOTO = {str(photo)!r}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_every_exercise_of_every_lesson_has_its_answer(path):
    nb = nbformat.read(path, as_version=4)
    done = solutions.solved(nb)
    changed = [i for i, (a, b) in enumerate(zip(nb.cells, done.cells, strict=True)) if a.source != b.source]
    assert changed and all(solutions.STUB.search(nb.cells[i].source) for i in changed)
    assert not any(solutions.STUB.search(done.cells[i].source) for i in changed)


def test_a_cell_that_says_not_done_is_found():
    nb = _lesson(("code", "1"), ("code", "2"), ("code", "3"))
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="Not done yet: ...\n")]
    later = "ok\nexercise 2 not done yet\n"
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text=later)]
    assert solutions.unsolved_outputs(nb) == [1, 2]
