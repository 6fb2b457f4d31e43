"""Every lesson runs top to bottom in this environment, and its assert cells hold.

Each lesson is executed once through ``scripts/execute_lessons.py``, whose cache
(``build/executed/``, keyed by the lesson, embedkit's files, the manifest and
``EMBEDKIT_BACKBONE``) the slide and site tests then reuse instead of executing it again.
A cell that raises fails the test with the lesson's name and the error, unless it is tagged
``raises-exception`` (the lessons' ``# NBVAL_RAISES_EXCEPTION`` cells, which show an error on
purpose). ``pytest notebooks/NN_name.ipynb`` runs one lesson the same way through nbval.
"""

import pytest
from execute_lessons import executed, lessons

LESSONS = lessons()


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_runs_top_to_bottom(path):
    nb = executed(path, log=lambda *_: None)
    code = [cell for cell in nb.cells if cell.cell_type == "code" and cell.source.strip()]
    assert code and all(cell.execution_count is not None for cell in code), "a code cell did not run"
    errors = [
        i
        for i, cell in enumerate(nb.cells)
        if any(out.get("output_type") == "error" for out in cell.get("outputs", []))
        and "raises-exception" not in cell.metadata.get("tags", [])
    ]
    assert errors == [], f"{path.name}: cells {errors} raised"
