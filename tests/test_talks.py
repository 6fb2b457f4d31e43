"""The talks the slide decks give (``scripts/talks/NN_name.toml``), checked against the lessons.

Fast and without a browser: every anchor of every talk names a heading (and, under it, a code
cell) the current notebook has, the class plans add up to 45 and 90 minutes, each deck is a
talk's length with speaker notes that say what to say, ask and demo; and the builder's rules
for code and printed output (lines that fit, nothing of the building machine).
"""

from __future__ import annotations

import re

import build_slides
import nbformat
import pytest
import talks
from execute_lessons import lessons

LESSONS = lessons()
IDS = [p.stem for p in LESSONS]


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_every_anchor_resolves_in_the_current_notebook(lesson):
    """Every slide's heading, and the code cell it names under that heading, are in the lesson.

    When a lesson's headings or cells change, this names each anchor to fix in the talk file.
    """
    talk = talks.load_talk(lesson.stem)
    nb = nbformat.read(lesson, as_version=4)
    try:
        slides = talks.resolve(talk, nb, lesson.name)
    except talks.AnchorError as err:
        pytest.fail(str(err), pytrace=False)
    assert len(slides) == len(talk.slides)
    headings = {talks.heading_key(text) for _, _, text in talks.headings(nb)}
    for length in talks.CLASS_MINUTES:
        for name, _ in talk.plan(length)["exercises"]:
            assert talks.heading_key(name) in headings, (
                f"{talk.path.name}: the {length}-minute plan names the exercise {name!r}, "
                f"which is no heading of {lesson.name}"
            )


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_deck_is_a_talk_that_fits_the_class_plans(lesson):
    talk = talks.load_talk(lesson.stem)
    count = 1 + len(talk.slides)  # with the title slide
    assert 14 <= count <= 36, f"{count} slides: a talk has about 20 to 35 (the short lesson 00 fewer)"
    for length in talks.CLASS_MINUTES:
        plan = talk.plan(length)
        assert plan["total"] == pytest.approx(length), (
            f"the {length}-minute plan adds up to {plan['total']:g} minutes: talk {plan['talk']:g}, "
            f"exercises {plan['exercises']}, questions {plan['questions']:g}"
        )
        assert plan["exercises"], f"the {length}-minute plan has no exercise"
    assert talk.plan(45)["talk"] <= 30, "a 45-minute class leaves at least 15 minutes for exercises"
    titles = [s["title"] for s in talk.slides]
    assert len(set(titles)) == len(titles), "each slide states its own idea: no repeated titles"
    for s in talk.slides:
        assert s.get("say") or s.get("ask") or s.get("demo"), f"slide {s['title']!r} has no speaker notes"
        assert 0 < float(s.get("minutes", 0)) <= 4, f"slide {s['title']!r}: minutes between 0 and 4"
        assert not re.search(r"(?i)\bsolution\b", s["title"]), "solutions go to the answer key, not on slides"
    for s in talk.slides:
        for key in ("say", "ask", "demo"):
            tex = re.search(r"\$|\\[a-zA-Z]+|\\[(\[]", s.get(key, ""))
            assert tex is None, (
                f"slide {s['title']!r}: the speaker notes ({key}) hold TeX ({tex.group(0)!r}), which the "
                "speaker view shows raw: say it in words"
            )
    asks = sum(1 for s in talk.slides if s.get("ask"))
    demos = sum(1 for s in talk.slides if s.get("demo"))
    assert asks >= len(talk.slides) // 4, f"only {asks} questions for the class in {len(talk.slides)} slides"
    assert demos >= 1, "the notes say at least once when to switch to the notebook live"


def test_anchor_error_names_the_missing_anchor(tmp_path):
    (tmp_path / "99_x.toml").write_text(
        '[[slide]]\ntitle = "T"\nanchor = "Setting up"\n\n'
        '[[slide]]\ntitle = "U"\nanchor = "No such heading"\n\n'
        '[[slide]]\ntitle = "V"\nanchor = "Setting up"\ncode = "not in any cell"\n'
    )
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("## Setting `up`"), nbformat.v4.new_code_cell("x = 1")]
    )
    talk = talks.load_talk("99_x", tmp_path)
    with pytest.raises(talks.AnchorError) as err:
        talks.resolve(talk, nb, "99_x.ipynb")
    message = str(err.value)
    assert "'No such heading'" in message and "slide 2" in message
    assert "'not in any cell'" in message and "slide 3" in message
    assert "slide 1" not in message  # a heading matches whatever its backticks


def test_solutions_are_found_under_their_exercise():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("### Exercise 1 · A"),
            nbformat.v4.new_code_cell("a = None"),
            nbformat.v4.new_markdown_cell(
                "<details><summary>Solution</summary>\n\n```python\na = 1\n```\n"
                "</details>\n\n### Exercise 2 · B\n\ntext"
            ),
            nbformat.v4.new_markdown_cell("<details><summary>Solution</summary>\n\nb = 2\n</details>"),
        ]
    )
    assert talks.solutions(nb) == [("Exercise 1 · A", "```python\na = 1\n```"), ("Exercise 2 · B", "b = 2")]


def test_code_is_rewrapped_to_fit_and_cut_to_twelve_lines():
    long = (
        "result = some_function(first_argument, second_argument, third_argument, fourth_argument,"
        " fifth_argument)  # a comment that makes it longer still"
    )
    code, left = build_slides.slide_code(long)
    assert left == 0
    assert all(len(line) <= build_slides.CODE_COLUMNS for line in code.split("\n")), code
    assert "# a comment that makes it longer still" in code
    assert sorted(re.findall(r"\w+", code)) == sorted(re.findall(r"\w+", long)), "every word kept"
    many = "\n".join(f"x{i} = {i}" for i in range(30))
    code, left = build_slides.slide_code(many)
    assert code.split("\n") == [f"x{i} = {i}" for i in range(build_slides.CODE_LINES)]
    assert left == 30 - build_slides.CODE_LINES
    part, _ = build_slides.slide_code(many, [3, 5])
    assert part == "x2 = 2\nx3 = 3\nx4 = 4"


def test_printed_output_never_shows_the_building_machine():
    text = (
        "weights: ImageNet weights from the package, /root/.pyenv/lib/python3.11/site-packages/m/w.pth\n"
        "/tmp/ipykernel_1/2.py:5: StandInWarning: not reachable\n"
        "embedding:  40%|####      | 2/5 [00:01<00:02]\n"
        "2026-12-06 22:41:16,123 INFO worker.py:1 -- Started a local Ray instance.\n"
        "(Embedder pid=123) restarted\n"
        "kept 17 of 24 files\n"
    )
    shown = build_slides.presentable(text)
    assert shown.split("\n") == [
        "weights: ImageNet weights from the package, …/w.pth",
        "kept 17 of 24 files",
        "",
    ]
    kept = build_slides.presentable("UserWarning: pretrained is deprecated\n", keep=True)
    assert "UserWarning" in kept
    assert build_slides.presentable("saved to /home/me/photos/cat.jpg\n") == "saved to …/cat.jpg\n"


def test_a_table_printed_as_text_keeps_its_index_and_the_named_columns():
    import pandas as pd

    frame = pd.DataFrame(
        {"long column a": [1.5, 22.25], "b": ["x", "yy"], "column c": [3, 4]},
        index=["first row", "second, longer row"],
    )
    text = "a caption line\n" + frame.to_string()
    shown = build_slides._text_columns(text, ["column c", "long column a"]).split("\n")
    expected = frame[["column c", "long column a"]].to_string().split("\n")  # in the order named
    assert shown[0] == "a caption line"
    assert [line.split() for line in shown[1:]] == [line.split() for line in expected]


def test_long_printed_lines_are_rewrapped_at_spaces_to_fit_the_slide():
    width = build_slides.OUTPUT_COLUMNS
    line = "  first decoded batch after 12 s, " + "then 3.4 rows/s measured " * 6
    parts = build_slides.wrap_printed(line)
    assert len(parts) > 1 and all(len(p) <= width for p in parts), parts
    assert all(p.startswith("    ") for p in parts[1:]), "continuations hang two spaces further in"
    assert " ".join(p.strip() for p in parts) == " ".join(line.split()), "every word kept, in order"
    assert build_slides.wrap_printed("x" * (width + 5)) == ["x" * width, "  " + "xxxxx"]
    assert build_slides.wrap_printed("short") == ["short"]
    shown = build_slides._output_lines("\n".join([line] * 12), True).split("\n")
    assert len(shown) == build_slides.OUTPUT_LINES + 1 and shown[-1].startswith("…")
