"""Self-checks of lesson 03, cosine similarity: ``cosine``, ``all_pairs_cosine``, ``top_neighbours``
and exercises 1 to 3.

Each check is called from one short cell of the lesson; see the package's docstring for how a
check behaves. The oracles are SciPy, scikit-learn, PyTorch, the course package's own functions
(run before they are switched off) and cases worked out by hand.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import heapq
import inspect
import textwrap
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import numpy as np
import scipy.spatial.distance
import torch
import torch.nn.functional as F
from scipy.stats import pearsonr
from sklearn.metrics.pairwise import cosine_similarity as _sklearn_cosine
from sklearn.neighbors import NearestNeighbors

import embedkit.similarity
from embedkit.selfcheck import (
    LIBRARIES,
    is_stand_in,
    library_cosines,
    library_names,
    not_done,
    not_written,
    reached,
    stand_in,
    switched_off,
)
from embedkit.similarity import _select_exact, pairwise_cosine, top_k
from embedkit.similarity import cosine_similarity as _package_cosine

__all__ = [
    "check_cosine",
    "check_zero_vector",
    "check_against_libraries",
    "check_all_pairs",
    "check_loop_and_matrix",
    "check_top_neighbours",
    "check_angular_distance",
    "check_pearson",
    "check_closest_train_test_pair",
]

_NUMPY_ONLY = "write it yourself with NumPy: no library's cosine or normalize"
_FALLBACK_COSINE = "the package's fallback, embedkit.similarity.cosine_similarity,"


@stand_in
def _fallback_cosine(a, b):
    """The course package's ``cosine_similarity``, in place of a ``cosine`` not written yet."""
    return _package_cosine(a, b)


@stand_in
def _fallback_all_pairs_cosine(X):
    """scikit-learn's ``cosine_similarity``, in place of an ``all_pairs_cosine`` not written yet."""
    return _sklearn_cosine(np.asarray(X, dtype=np.float64))


@stand_in
def _fallback_top_neighbours(scores_row, k):
    """The course package's exact top-k selection (the one ``top_k`` redoes tied rows with), in place of a
    ``top_neighbours`` not written yet."""
    row = np.asarray(scores_row, dtype=np.float64)
    return _select_exact(row[None, :], k)[0][0]


def _oracle_cosine(a, b) -> float:
    """Cosine similarity by SciPy (one minus its cosine distance)."""
    return 1 - scipy.spatial.distance.cosine(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def _shown(v: Any) -> str:
    """A short printable form of a vector or matrix: three decimals, on one line."""
    return np.array2string(
        np.asarray(v, dtype=np.float64), precision=3, suppress_small=True, max_line_width=10_000
    )


def _raises_zero_vector(function: Callable, *args: Any) -> None:
    """``function(*args)`` must raise ``ValueError`` whose message says "zero vector"."""
    shown = [repr(a.tolist()) if isinstance(a, np.ndarray) else repr(a) for a in args]
    call = f"{function.__name__}({', '.join(shown)})"
    try:
        function(*args)
    except ValueError as exc:
        assert "zero vector" in str(exc), f"{call}: say what went wrong, with the words 'zero vector': {exc}"
    except Exception as exc:
        raise AssertionError(f"{call} raised {type(exc).__name__}: {exc}; raise ValueError instead") from exc
    else:
        raise AssertionError(f"{call} should raise ValueError, not return a number")


def _reached(function: Callable) -> tuple[list[Callable], list[Any]]:
    """The learner's own functions that ``function`` reaches (itself first), and every object their
    code names or holds (:func:`embedkit.selfcheck.reached`)."""
    functions, used = reached(function)
    return functions, [thing for _, thing in used]


def _loops_in(function: Callable) -> list[str]:
    """The Python loops in a function's source: for, while, comprehensions, and calls that loop for you."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):  # no source to read: the other checks still run
        return []
    hidden = {"map", "vectorize", "frompyfunc", "fromiter", "apply_along_axis", "product", "starmap"}
    found = []
    for node in ast.walk(tree):
        called = (
            getattr(node.func, "id", getattr(node.func, "attr", "")) if isinstance(node, ast.Call) else ""
        )
        if isinstance(node, ast.For | ast.While):
            found.append(type(node).__name__.lower())
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            found.append("a comprehension")
        elif called in hidden:
            found.append(called)
    return found


@contextlib.contextmanager
def _cosine_replaced(function: Callable, replacement: Callable) -> Iterator[None]:
    """While the block runs, ``function`` meets ``replacement`` wherever it finds the notebook's ``cosine``:
    among its globals, as a default argument (under any name) or in a closure. All is put back after."""
    if not inspect.isfunction(function):
        yield
        return
    theirs = function.__globals__.get("cosine")

    def swap(name: str, value: Any) -> Any:
        held = "cosine" in (name, getattr(value, "__name__", None)) or (
            theirs is not None and value is theirs
        )
        return replacement if held else value

    code, defaults, kwdefaults = function.__code__, function.__defaults__, function.__kwdefaults__
    cells = []
    for name, cell in zip(code.co_freevars, function.__closure__ or (), strict=True):
        try:
            cells.append((name, cell, cell.cell_contents))
        except ValueError:  # a cell not filled yet
            continue
    try:
        if defaults:
            names = code.co_varnames[code.co_argcount - len(defaults) : code.co_argcount]
            function.__defaults__ = tuple(swap(n, v) for n, v in zip(names, defaults, strict=True))
        if kwdefaults:
            function.__kwdefaults__ = {n: swap(n, v) for n, v in kwdefaults.items()}
        for name, cell, value in cells:
            cell.cell_contents = swap(name, value)
        with mock.patch.dict(function.__globals__, {"cosine": replacement}):
            yield
    finally:
        function.__defaults__, function.__kwdefaults__ = defaults, kwdefaults
        for _, cell, value in cells:
            cell.cell_contents = value


def check_cosine(cosine: Callable) -> Callable:
    """Checks ``cosine(a, b)`` against SciPy on 200 random pairs, with the libraries' cosines switched off,
    then its return type, short and very short vectors, signs, and a zero vector in either place."""
    if not_written(cosine, [1.0, 0.0], [1.0, 0.0]):
        not_done("cosine still returns None", _FALLBACK_COSINE)
        return _fallback_cosine
    used = library_names(cosine, LIBRARIES)
    assert not used, (
        f"cosine uses {used}: write the formula with NumPy, not with SciPy, scikit-learn, PyTorch or embedkit"
    )
    check_pairs = np.random.default_rng(7).standard_normal((200, 2, 16))
    expected = [_oracle_cosine(a, b) for a, b in check_pairs]  # before SciPy is switched off
    with switched_off(library_cosines(), _NUMPY_ONLY):
        given = check_pairs.copy()  # float64 arrays, which np.asarray does not copy
        for i, ((a, b), want) in enumerate(zip(given, expected, strict=True)):
            got = cosine(a, b)
            assert abs(got - want) < 1e-9, (
                f"cosine(a, b) gave {got} where SciPy gives {float(want)!r}, for\n"
                f"a = {_shown(check_pairs[i, 0])}\nb = {_shown(check_pairs[i, 1])}"
            )
        assert np.array_equal(given, check_pairs), (
            "cosine changed the vectors it was given: divide into new arrays (a = a / m), not in place"
        )
        returned = cosine([1, 2], [3, 4])
        assert type(returned) is float, (
            f"cosine([1, 2], [3, 4]) returned {returned!r}, a {type(returned).__name__}: "
            "return a plain Python float, float(...)"
        )
        for a, b, want, why in [
            ([0, 0, 3], [0, 0, 0.001], 1.0, "a short vector keeps its direction"),
            (
                [1e-200, 0],
                [1, 0],
                1.0,
                "a very short vector is not a zero vector; divide each vector by its largest entry first",
            ),
            ([1, 0], [1e-200, 0], 1.0, "the same with the very short vector second: scale both vectors"),
            (
                [-2, 0],
                [1, 0],
                -1.0,
                "a vector whose largest entry is negative is not a zero vector: use np.abs",
            ),
            (
                [5, 5, 5],
                [-5, -5, -5],
                -1.0,
                "opposite directions give -1 (how did you scale a vector whose entries are all negative?)",
            ),
            ([-1, -2, -3], [-3, 1, -2], 0.5, "turning both vectors around changes no cosine"),
            ([1, -1], [1, 0], 0.5**0.5, "entries that sum to 0 are not a zero vector: test the length"),
        ]:
            try:
                got = cosine(a, b)
            except ValueError as exc:
                got = exc
            assert isinstance(got, float) and abs(got - want) < 1e-12, (
                f"cosine({a}, {b}) gave {got!r}, not {want}: {why}"
            )
        _raises_zero_vector(cosine, [1, 1, 1], [0, 0, 0])
        _raises_zero_vector(cosine, [0.0, 0.0], [2.0, 1.0])
    print(
        "Correct! your cosine agrees with SciPy, returns a float, keeps tiny vectors and refuses zero vectors"
    )
    return cosine


def check_zero_vector(cosine: Callable) -> Callable:
    """Checks that ``cosine`` (yours, or the package's fallback) refuses a zero vector in either place
    with a ValueError that says "zero vector", and that yours keeps a very short vector, [1e-200, 0]."""
    if not_written(cosine, [1.0, 0.0], [1.0, 0.0]):
        cosine = _fallback_cosine
        _raises_zero_vector(cosine, [1, 1, 1], [0, 0, 0])
        _raises_zero_vector(cosine, [0, 0, 0], [2, 1, 5])
        print(
            "Not done yet: checked the package's fallback in place of your cosine; it refuses a zero vector"
        )
        return cosine
    _raises_zero_vector(cosine, [1, 1, 1], [0, 0, 0])
    _raises_zero_vector(cosine, [0, 0, 0], [2, 1, 5])
    for a, b, why in [
        (
            [1e-200, 0],
            [1, 0],
            "a very short vector is not a zero vector: divide each vector by its largest entry first",
        ),
        ([1, 0], [1e-200, 0], "a very short vector is not a zero vector, in either place"),
    ]:
        got = cosine(a, b)
        assert abs(got - 1) < 1e-12, f"cosine({a}, {b}) gave {got!r}, not 1: {why}"
    print("Correct! a zero vector raises ValueError in either place; a very short one still has a direction")
    return cosine


def check_against_libraries(cosine: Callable, pairs: np.ndarray) -> Callable:
    """Checks ``cosine`` (yours, or the package's fallback) on every pair ``(a, b)`` of ``pairs`` against
    SciPy and PyTorch to 1e-9, and yours also against the course
    package's ``cosine_similarity`` (float32) to 1e-5."""
    yours = not not_written(cosine, [1.0, 0.0], [1.0, 0.0])
    if not yours:
        cosine = _fallback_cosine
    pairs = np.asarray(pairs, dtype=np.float64)
    ours = np.array([cosine(a, b) for a, b in pairs])
    references = {
        "SciPy": np.array([_oracle_cosine(a, b) for a, b in pairs]),
        "PyTorch": F.cosine_similarity(
            torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1]), dim=1
        ).numpy(),
    }
    for name, other in references.items():
        i = int(np.argmax(np.abs(ours - other)))
        assert abs(ours[i] - other[i]) <= 1e-9, (
            f"on pairs[{i}], the cosine that ran gives {float(ours[i])!r} and {name} {float(other[i])!r}"
        )
    if not yours:  # the fallback *is* the package's, so it is not compared with itself
        print(
            "Not done yet: checked the package's fallback in place of your cosine; "
            "it agrees with SciPy and PyTorch"
        )
        return cosine
    package = np.array([_package_cosine(a, b) for a, b in pairs])
    i = int(np.argmax(np.abs(ours - package)))
    assert abs(ours[i] - package[i]) <= 1e-5, (
        f"on pairs[{i}], your cosine gives {float(ours[i])!r} and embedkit.similarity.cosine_similarity "
        f"{float(package[i])!r}"
    )
    print(f"Correct! your cosine agrees with SciPy, PyTorch and embedkit on {len(pairs):,} pairs")
    return cosine


def check_all_pairs(all_pairs_cosine: Callable, X: np.ndarray, cosine: Callable) -> Callable:
    """Checks ``all_pairs_cosine`` for library calls, calls of ``cosine`` and Python loops, then, with the
    libraries' cosines switched off, against scikit-learn on random rows and on ``X``, on rows with
    negative entries, a very short row and a zero row."""
    if not_written(all_pairs_cosine, np.eye(2)):
        not_done("all_pairs_cosine still returns None", "scikit-learn's cosine_similarity")
        return _fallback_all_pairs_cosine
    functions, named = _reached(all_pairs_cosine)
    assert not any(thing is cosine for thing in named), (
        "no cosine() per pair: one normalisation and one matrix product"
    )
    used = library_names(all_pairs_cosine, LIBRARIES)
    assert not used, (
        f"all_pairs_cosine uses {used}: normalise and multiply with NumPy, no library's cosine or normalize"
    )
    looping = sorted({loop for f in functions for loop in _loops_in(f)})
    assert not looping, (
        f"all_pairs_cosine loops ({', '.join(looping)}): no Python loop at all, one matrix product"
    )

    random_rows = np.random.default_rng(3).standard_normal((30, 8))
    expected_random = _sklearn_cosine(random_rows)
    expected_X = _sklearn_cosine(np.asarray(X, dtype=np.float64))
    given = random_rows.copy()  # float64, which np.asarray does not copy

    def call(M: np.ndarray, what: str, zero_vector_ok: bool = False) -> Any:
        """``all_pairs_cosine(M)``; an error it raises names the call (None: it took M for a zero vector)."""
        try:
            return all_pairs_cosine(M)
        except AssertionError:
            raise
        except Exception as exc:
            if zero_vector_ok and isinstance(exc, ValueError) and "zero vector" in str(exc):
                return None
            n, d = np.shape(M)
            shapes = (
                f"; to divide the ({n}, {d}) rows by one number each, give those numbers as a ({n}, 1) "
                f"column, not shape ({n},): keepdims=True"
                if "broadcast" in str(exc)
                else ""
            )
            raise AssertionError(
                f"all_pairs_cosine({what}) raised {type(exc).__name__}: {str(exc).strip()}{shapes}"
            ) from exc

    with switched_off(library_cosines(), _NUMPY_ONLY):
        got_random = call(given, "30 random rows of 8")
        got_X = call(np.array(X, copy=True), "the embeddings X")
        negative = np.array([[-1.0, -2.0], [1.0, 2.0], [-2.0, -1.0]])
        got_negative = call(negative, "[[-1, -2], [1, 2], [-2, -1]]")
        got_tiny = call(np.array([[1e-200, 0.0], [1.0, 0.0]]), "[[1e-200, 0], [1, 0]]", zero_vector_ok=True)
        got_balanced = call(np.array([[1.0, -1.0], [1.0, 0.0]]), "[[1, -1], [1, 0]]", zero_vector_ok=True)
        _raises_zero_vector(all_pairs_cosine, np.array([[1.0, 2.0], [0.0, 0.0], [3.0, 1.0]]))
    assert np.array_equal(given, random_rows), (
        "all_pairs_cosine changed the matrix it was given: divide into a new array (X = X / m), not in place"
    )
    assert np.shape(got_random) == (30, 30), (
        f"for 30 rows of 8 numbers it gave shape {np.shape(got_random)}, not (30, 30): one row and one "
        "column per vector"
    )
    assert np.asarray(got_random).dtype == np.float64, f"return float64, not {np.asarray(got_random).dtype}"
    i, j = np.unravel_index(np.argmax(np.abs(got_random - expected_random)), (30, 30))
    assert np.allclose(got_random, expected_random, rtol=0, atol=1e-12), (
        f"entry ({i}, {j}) is {float(got_random[i, j])!r} where scikit-learn gives "
        f"{float(expected_random[i, j])!r}, "
        f"for the rows\n{_shown(random_rows[i])}\n{_shown(random_rows[j])}"
    )
    want_negative = np.array([[1, -1, 0.8], [-1, 1, -0.8], [0.8, -0.8, 1]])
    negative = (
        f"the rows [-1, -2], [1, 2], [-2, -1] gave\n{_shown(got_negative)}\nnot\n{_shown(want_negative)}"
    )
    assert np.array_equal(np.sign(got_negative), np.sign(want_negative)), (
        f"{negative}\na row whose entries are all negative keeps its direction: how did you scale it?"
    )
    assert np.allclose(got_negative, want_negative, rtol=0, atol=1e-12), negative
    i, j = np.unravel_index(np.argmax(np.abs(got_X - expected_X)), np.shape(expected_X))
    assert np.allclose(got_X, expected_X, rtol=0, atol=1e-9), (
        f"on the embeddings, entry ({i}, {j}) is {float(got_X[i, j])!r} "
        f"where scikit-learn gives {float(expected_X[i, j])!r}"
    )
    assert got_tiny is not None and np.allclose(got_tiny, 1, rtol=0, atol=1e-12), (
        f"[[1e-200, 0], [1, 0]] gave {got_tiny}: a very short row is not a zero vector; "
        "divide each row by its largest entry first"
    )
    assert got_balanced is not None and np.isclose(got_balanced[0, 1], 0.5**0.5, rtol=0, atol=1e-12), (
        f"[[1, -1], [1, 0]] gave {got_balanced}: a row whose entries sum to 0 is not a zero vector; "
        "test its length"
    )
    print("Correct! your all_pairs_cosine agrees with scikit-learn, with no loop and no library's cosine")
    return all_pairs_cosine


def check_loop_and_matrix(
    S_loop: np.ndarray, S: np.ndarray, X: np.ndarray, cosine: Callable, all_pairs_cosine: Callable
) -> None:
    """Checks that ``S_loop``, ``cosine`` over every pair of the first rows of ``X``, equals the top-left
    block of ``S = all_pairs_cosine(X)`` to 1e-9, and ``S`` the course package's ``pairwise_cosine(X)`` to
    1e-5 (the package works in float32, whose rounding differs between CPUs); prints both differences.
    ``Correct!`` needs both functions to be yours, not stand-ins."""
    m = len(S_loop)
    loop_vs_matrix = np.abs(S_loop - S[:m, :m]).max()
    package = np.abs(S - pairwise_cosine(X)).max()
    print(
        f"largest difference, loop vs matrix: {loop_vs_matrix:.1e}; "
        f"matrix vs embedkit's pairwise_cosine: {package:.1e}"
    )
    assert loop_vs_matrix <= 1e-9, "the loop over cosine and the matrix from all_pairs_cosine disagree"
    assert package <= 1e-5, (
        "the matrix from all_pairs_cosine differs from embedkit.similarity.pairwise_cosine"
    )
    fallbacks = [
        name for name, f in [("cosine", cosine), ("all_pairs_cosine", all_pairs_cosine)] if is_stand_in(f)
    ]
    if fallbacks:
        print(f"Not done yet: checked the fallback in place of your {' and your '.join(fallbacks)}")
    else:
        print("Correct! your loop over cosine and your all_pairs_cosine agree, and with the course package")


_np_lexsort = np.lexsort  # kept before any spy takes its place

#: Sorting calls written as methods (``row.argsort()``), which no spy can watch.
_SORT_METHODS = {"argsort", "sort", "sort_values", "argpartition", "partition"}

#: NumPy's uniques sort the whole array they are given.
_UNIQUES = ("unique", "unique_values", "unique_counts", "unique_inverse", "unique_all")


def _sort_methods_in(function: Callable) -> list[str]:
    """The sorts ``function``'s source calls as methods, as ``x.argsort()`` (not ``np.argsort(x)``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return []
    return sorted(
        {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _SORT_METHODS
            and not (isinstance(node.func.value, ast.Name) and node.func.value.id in ("np", "numpy"))
        }
    )


def _ties_reversed(values: Any, kth: Any) -> np.ndarray:
    """A valid ``np.argpartition(values, kth)`` of a 1-D array that is the worst for the tie rule: equal
    values in reverse position order, and between the kth places the larger values first."""
    values = np.asarray(values)
    positions = np.arange(len(values))
    order = _np_lexsort((-positions, values))  # ascending; of equal values, the higher position first
    bounds = [-1, *sorted({int(i) % len(values) for i in np.atleast_1d(kth)}), len(values)]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        part = order[lo + 1 : hi]  # between two kth places a partition promises no order: descending
        order[lo + 1 : hi] = part[_np_lexsort((-part, -values[part]))]
    return order


@contextlib.contextmanager
def _sorts_limited(limit: list[int]) -> Iterator[None]:
    """While the block runs, ``np.argsort``, ``np.sort``, ``np.lexsort``, ``np.unique`` (and its kin),
    ``np.sort_complex``, ``sorted`` and ``heapq.nlargest`` refuse more than ``limit[0]`` entries, and
    ``np.partition`` and ``np.argpartition`` more than ``limit[0]`` kth places: the k best are picked first,
    and only they are sorted. Where NumPy promises no order for equal values (``np.argsort`` of a row
    without ``kind="stable"``, ``np.argpartition``, ``np.partition``), they come in reverse position order,
    on every CPU and NumPy version."""

    def limited(name: str, sort: Callable, size: Callable) -> Callable:
        def watched(*args, **kwargs):
            items = list(args[0]) if name == "sorted" else args[0]
            if size(items) > limit[0]:
                raise AssertionError(
                    f"top_neighbours sorts {size(items)} scores ({name}) for k = {limit[0]}: "
                    "pick the k best first (np.argpartition or np.partition), then sort only those k"
                )
            if name == "argsort" and not _stable(*args[1:], **kwargs) and np.ndim(items) == 1:
                # An unstable sort may put equal values in any order: this one reverses them, on every CPU.
                items = np.asarray(items)
                return _np_lexsort((-np.arange(len(items)), items))
            return sort(items, *args[1:], **kwargs) if name == "sorted" else sort(*args, **kwargs)

        return watched

    def partitioned(name: str, partition: Callable) -> Callable:
        def watched(a, kth, *args, **kwargs):
            if np.size(kth) > limit[0]:
                raise AssertionError(
                    f"top_neighbours sorts {np.size(kth)} scores (np.{name} with {np.size(kth)} kth places) "
                    f"for k = {limit[0]}: pick the k best first, then sort only those k"
                )
            result = partition(a, kth, *args, **kwargs)  # NumPy's own, for its errors and other shapes
            axis = kwargs.get("axis", args[0] if args else -1)
            if np.ndim(a) != 1 or axis not in (-1, 0, None) or np.asarray(a).dtype.names:
                return result
            order = _ties_reversed(a, kth)
            return order if name == "argpartition" else np.asarray(a)[order]

        return watched

    def _stable(axis: Any = -1, kind: str | None = None, *_: Any, stable: Any = None, **__: Any) -> bool:
        """Whether ``np.argsort(a, *args, **kwargs)`` was asked for a stable sort."""
        return bool(stable) or kind in ("stable", "mergesort")

    watched = [
        (np, "argsort", np.size),
        (np, "sort", np.size),
        (np, "lexsort", lambda keys: np.shape(keys)[-1]),
        (np, "sort_complex", np.size),
        (builtins, "sorted", len),
        (heapq, "nlargest", int),
        (heapq, "nsmallest", int),
    ]
    watched += [(np, name, np.size) for name in _UNIQUES if hasattr(np, name)]
    with contextlib.ExitStack() as stack:
        for owner, name, size in watched:
            original = getattr(owner, name)
            stack.enter_context(mock.patch.object(owner, name, limited(name, original, size)))
        for name in ("argpartition", "partition"):
            stack.enter_context(mock.patch.object(np, name, partitioned(name, getattr(np, name))))
        yield


def check_top_neighbours(
    top_neighbours: Callable, S_no_self: np.ndarray, X: np.ndarray, query: int, k: int
) -> Callable:
    """Checks ``top_neighbours`` on made-up rows with ties and a -inf whose answers are known, on 20 seeded
    rows of many ties against a stable sort, then on row ``query`` of ``S_no_self`` against the package's
    ``top_k(X)``, and that it leaves every row it is given unchanged. While it runs, ``top_k`` is switched
    off, NumPy's and Python's sorts refuse more than k entries (it picks the k best, then sorts them) and
    NumPy's sorts that promise no order for ties reverse them (:func:`_sorts_limited`)."""
    if is_stand_in(top_neighbours):
        not_done("top_neighbours still returns None", "the package's top-k selection")
        return _fallback_top_neighbours
    package_rows, package_scores = (found[query] for found in top_k(X, k=k))  # before it is switched off
    row = np.array([0.2, 0.9, -np.inf, 0.5, 0.9, 0.1, 0.5, 0.7])
    cases = [  # (scores, k, the right answer, why)
        (row, 1, [1], "the highest score, 0.9, is at positions 1 and 4: the lower one goes in"),
        (
            row,
            5,
            [1, 4, 7, 3, 6],
            "best first; of equal scores (0.9 at 1 and 4, 0.5 at 3 and 6) the lower position first",
        ),
        (row, 4, [1, 4, 7, 3], "0.5 at 3 and 6 tie for the last place: the lower position, 3, goes in"),
        (row, 7, [1, 4, 7, 3, 6, 0, 5], "-inf, as the query's score with itself, comes last"),
        (
            np.tile(row, 40),
            5,
            [1, 4, 9, 12, 17],
            "the row 40 times: its first five 0.9s, in order "
            "(np.argpartition keeps any of the tied scores at the cut; keep the lowest positions)",
        ),
        (
            np.tile(row, 40),
            30,
            list(np.flatnonzero(np.tile(row, 40) == 0.9)[:30]),
            "30 equal best scores: in position order (a sort that is not stable, np.argsort's default, "
            "may reorder more than 16 equal values; use kind='stable')",
        ),
        ([1.0, 1.0, 2.0], 2, [2, 0], "1.0 at 0 and 1 tie for the last place: the lower position, 0, goes in"),
        ([0.5, 0.5, 0.5, 0.9], 2, [3, 0], "0.5 at 0, 1 and 2 tie for the last place: the lowest goes in"),
    ]
    tie_rng = np.random.default_rng(30)
    for _ in range(20):  # many ties: whole numbers 0 to 3; the right answer by a stable sort of the row
        n = int(tie_rng.integers(2, 17))
        scores = tie_rng.integers(0, 4, n).astype(np.float64)
        kk = int(tie_rng.integers(1, n + 1))
        want = np.argsort(-scores, kind="stable")[:kk].tolist()  # before the spies go on
        cases.append((scores, kk, want, "best first; of equal scores, the lower position first"))
    methods = sorted({m for f in _reached(top_neighbours)[0] for m in _sort_methods_in(f)})
    assert not methods, (
        f"top_neighbours calls .{'(), .'.join(methods)}() as a method: call np.argsort(x), "
        "np.argpartition(x, kth) and the like as functions instead, so that the check can see how many "
        "scores are sorted"
    )

    def _off(*args, **kwargs):
        raise AssertionError("write top_neighbours yourself with NumPy, not with the package's top_k")

    # Swapping their code reaches every name they go by (a notebook's `from ... import top_k` included).
    packaged = [top_k, embedkit.similarity._select_top_k]
    saved = [f.__code__ for f in packaged]
    limit = [k]
    answers = []
    changed = []  # the rows that top_neighbours wrote into
    try:
        for f in packaged:
            f.__code__ = _off.__code__
        with _sorts_limited(limit):
            for scores, kk, _, _ in cases:
                limit[0] = kk
                given = np.array(scores, dtype=np.float64)  # float64, which np.asarray does not copy
                answers.append(top_neighbours(given, kk))
                if not np.array_equal(given, np.asarray(scores, dtype=np.float64)):
                    changed.append(f"{np.asarray(scores)[:8].tolist()}{' ...' if len(scores) > 8 else ''}")
            limit[0] = k
            row_copy = np.array(S_no_self[query], copy=True)
            got_query = top_neighbours(row_copy, k)
            if not np.array_equal(row_copy, S_no_self[query]):
                changed.append(f"row {query} of S_no_self")
    finally:
        for f, code in zip(packaged, saved, strict=True):
            f.__code__ = code
    if got_query is None:
        not_done("top_neighbours still returns None", "the package's top-k selection")
        return _fallback_top_neighbours
    used = library_names(top_neighbours, (*LIBRARIES, "pandas"))
    assert not used, (
        f"top_neighbours uses {used}: select and sort with NumPy, not with pandas, SciPy, scikit-learn, "
        "PyTorch or embedkit"
    )
    assert not changed, (
        f"top_neighbours changed the row it was given ({changed[0]}): the notebook passes S_no_self[query], "
        "a view, so this writes into S_no_self; work on a copy (r = scores_row.copy()), not in place"
    )
    for (scores, kk, want, why), got in zip(cases, answers, strict=True):
        got = np.asarray(got)
        shown = f"{np.asarray(scores)[:16].tolist()}{' ...' if len(scores) > 16 else ''}"
        assert np.issubdtype(got.dtype, np.integer), (
            f"top_neighbours({shown}, k={kk}) gave {got.tolist()}, not {want}: positions, not scores"
        )
        assert got.tolist() == want, f"top_neighbours({shown}, k={kk}) gave {got.tolist()}, not {want}: {why}"
    neighbours = np.asarray(got_query)
    assert query not in neighbours and neighbours.shape == (k,), (
        f"row {query} of S_no_self, k = {k}: gave {neighbours.tolist()}; want {k} positions, "
        f"the query itself ({query}) not among them"
    )
    scores = np.asarray(S_no_self)[query, neighbours]
    assert np.allclose(scores, package_scores, rtol=0, atol=1e-5), (
        f"row {query} of S_no_self, k = {k}: the positions {neighbours.tolist()} hold the scores "
        f"{_shown(scores)}, not the {k} highest, {_shown(package_scores)}"
    )
    print(
        f"Correct! its {k} nearest neighbours, from {scores[0]:.3f} down to {scores[-1]:.3f}, "
        "with only k scores sorted"
    )
    return top_neighbours


def check_angular_distance(angular_distance: Callable | None, triangle_breaker: Any) -> Callable | None:
    """Checks that ``angular_distance`` calls ``cosine``, gives known angles in degrees, survives a cosine a
    hair past ±1 and keeps tiny angles; and that ``1 - cos`` (by SciPy) breaks the triangle inequality for
    ``triangle_breaker``. No stand-in: nothing later in the lesson uses either, so until both are set it
    prints "Not done yet" and returns ``angular_distance`` as it was."""
    if angular_distance is None or triangle_breaker is None:
        given = {"angular_distance": angular_distance, "triangle_breaker": triangle_breaker}
        missing = [name for name, value in given.items() if value is None]
        print(f"Not done yet: set {' and '.join(missing)}")
        return angular_distance
    # The spies stand in for `cosine` wherever the function finds it: globals, defaults, closures.
    calls = []

    def counting(p, q):
        calls.append(1)
        return _oracle_cosine(p, q)

    with _cosine_replaced(angular_distance, counting):
        angular_distance([1, 0], [0, 1])
    assert calls, "write angular_distance with a call to cosine(): the check feeds it cosines a hair past ±1"
    same = angular_distance([1, 1, 1], [1, 1, 1])
    # near ±1, arccos magnifies rounding: allow a millionth of a degree or so
    assert abs(same) < 1e-5, f"[1, 1, 1] and [1, 1, 1] gave {same}, not 0 degrees"
    right_angle = angular_distance([1, 0], [0, 1])
    assert abs(right_angle - 90) < 1e-9, f"[1, 0] and [0, 1] gave {right_angle}, not 90: degrees, not radians"
    for overshoot, angle in [(np.nextafter(1.0, 2.0), 0.0), (np.nextafter(-1.0, -2.0), 180.0)]:
        # a cosine that lands a hair past ±1 (trap 2) must still give an angle
        with _cosine_replaced(angular_distance, lambda a, b, v=overshoot: v):
            got = angular_distance([1, 0], [1, 0])
        assert not np.isnan(got) and abs(got - angle) < 1e-6, (
            f"with cosine() answering {float(overshoot)!r} (a hair past ±1), it gave {got}, not {angle}"
        )
    opposite = angular_distance([5, 5, 5], [-5, -5, -5])
    assert abs(opposite - 180) < 1e-5, f"[5, 5, 5] and [-5, -5, -5] gave {opposite}, not 180"
    sixty = angular_distance([1, 0], [1, 3**0.5])
    assert abs(sixty - 60) < 1e-9, f"[1, 0] and [1, √3] gave {sixty}, not 60"
    for tilt in (1e-3, 1e-6):  # tiny angles: a rounded cosine loses them
        want, got = np.degrees(np.arctan(tilt)), angular_distance([1, 0], [1, tilt])
        assert abs(got - want) < 1e-6, (
            f"[1, 0] and [1, {tilt}] are {want:.3g} degrees apart, not {got:.3g}: clip, don't round"
        )
    x, y, z = (np.asarray(v, dtype=np.float64) for v in triangle_breaker)
    assert x.shape == y.shape == z.shape == (2,) and all(v.any() for v in (x, y, z)), (
        f"triangle_breaker = {triangle_breaker!r}: want three 2-D vectors, no zero vector"
    )
    cos_dist = scipy.spatial.distance.cosine  # 1 - cos, by SciPy
    assert cos_dist(x, z) > cos_dist(x, y) + cos_dist(y, z) + 1e-9, (
        f"for x, y, z = {x.tolist()}, {y.tolist()}, {z.tolist()}, "
        f"1 - cos gives d(x, z) = {cos_dist(x, z):.3f} "
        f"<= d(x, y) + d(y, z) = {cos_dist(x, y):.3f} + {cos_dist(y, z):.3f}: the inequality holds"
    )
    print(
        f"Correct! 1 - cos: {cos_dist(x, z):.3f} > {cos_dist(x, y):.3f} + {cos_dist(y, z):.3f}; "
        f"angles: {angular_distance(x, z):.1f} <= {angular_distance(x, y):.1f} + "
        f"{angular_distance(y, z):.1f} degrees"
    )
    return angular_distance


def check_pearson(pearson: Callable | None) -> Callable | None:
    """Checks that ``pearson`` returns what ``cosine`` gives for centred vectors (a stand-in cosine records
    what it is given), the properties of a correlation, and agreement with ``scipy.stats.pearsonr``, on
    arrays and on lists. No stand-in: nothing later in the lesson uses it; until it is set, "Not done yet"
    and None. An error raised inside ``pearson`` comes back as an AssertionError that names the call."""
    if pearson is None:
        print("Not done yet")
        return pearson
    check_rng = np.random.default_rng(1)
    a, b = check_rng.standard_normal((2, 30))
    calls = []

    def call(x, y):  # pearson(x, y), whose error, if any, names the call and says what to do
        try:
            return pearson(x, y)
        except AssertionError:
            raise
        except Exception as exc:
            shown = [repr(v) if isinstance(v, list) else f"an array of {np.size(v)}" for v in (x, y)]
            lists = any(isinstance(v, list) for v in (x, y))
            advice = "; the inputs may be lists: convert them with np.asarray first" if lists else ""
            raise AssertionError(
                f"pearson({', '.join(shown)}) raised {type(exc).__name__}: {exc}{advice}"
            ) from exc

    def recording(p, q):  # records what it is given and answers 0.25, whatever it is given
        calls.append((np.asarray(p, dtype=float), np.asarray(q, dtype=float)))
        return 0.25

    with _cosine_replaced(pearson, recording):
        stubbed = call(a, b)
    assert calls, "write pearson with a call to cosine(): that is the point of the exercise"
    assert abs(stubbed - 0.25) < 1e-12, (
        f"with cosine() answering 0.25, pearson(a, b) returned {stubbed!r}: return what cosine() returns"
    )
    means = [(p.mean(), q.mean()) for p, q in calls]
    assert all(abs(p) < 1e-9 and abs(q) < 1e-9 for p, q in means), (
        f"pearson(a, b) of 30 random numbers each handed cosine() vectors whose means are "
        f"{', '.join(f'{p:.2g} and {q:.2g}' for p, q in means)}: "
        "which change to each vector does Pearson's formula make?"
    )
    r = call(a, b)
    # a and b: 30 random normal numbers each
    for name, got, want in [
        ("pearson(3a + 7, b)", call(3 * a + 7, b), r),
        ("pearson(a, -b)", call(a, -b), -r),
        ("pearson(a, 2a - 5)", call(a, 2 * a - 5), 1.0),
        ("pearson(a + 100, b + 100)", call(a + 100, b + 100), r),
    ]:
        assert abs(got - want) < 1e-9, (
            f"{name} gave {got!r}, not {want!r} (pearson(a, b) = {r!r}; a, b: 30 random numbers each)"
        )
    for x, y, shown in [
        ([1, 2, 10], [1, 3, 2], "[1, 2, 10], [1, 3, 2]"),
        (a, b, "a, b: 30 random normal numbers each"),
        (check_rng.exponential(size=25), check_rng.exponential(size=25), "25 random positive numbers each"),
    ]:
        got, want = call(x, y), pearsonr(x, y).statistic
        assert abs(got - want) < 1e-9, (
            f"pearson({shown}) gave {got!r}; scipy.stats.pearsonr gives {float(want)!r}"
        )
    print("Correct! pearson is the cosine of the centred vectors, and agrees with scipy.stats.pearsonr")
    return pearson


def check_closest_train_test_pair(
    answer: Any,
    flags_as_leak: Any,
    shares: Any,
    n_flagged: Any,
    manifest,
    X: np.ndarray,
    S: np.ndarray,
    lowest_copy_score: float,
) -> None:
    """Checks exercise 3: ``answer`` is (a training image, a test image) from different groups with their
    score in ``S``, and no such pair scores higher (oracle: scikit-learn's nearest neighbours on ``X``, ties
    count as right); ``n_flagged`` counts the train x test pairs from different groups that score above
    ``lowest_copy_score`` (filtering by source photo instead of group gives another count); then
    ``flags_as_leak`` compares the pair's score with ``lowest_copy_score`` and ``shares`` reads the two
    rows, judged together so that a wrong one is not named."""
    rest = [name for name, value in [("flags_as_leak", flags_as_leak), ("shares", shares),
                                     ("n_flagged", n_flagged)] if value is None]  # fmt: skip
    if answer is None or rest:
        print("Not done yet" + ("" if answer is None else f": set {', '.join(rest)} too"))
        return
    train_path, test_path, score = answer
    split_of = dict(zip(manifest["path"], manifest["split"], strict=True))
    assert {train_path, test_path} <= split_of.keys(), (
        "give the paths as in manifest['path'], like 'test/grass_crop.jpg'"
    )
    row = {p: i for i, p in enumerate(manifest["path"])}
    group_of = manifest["group"].to_numpy()
    assert split_of[train_path] == "train" and split_of[test_path] == "test", (
        "(train_path, test_path), in that order"
    )
    assert group_of[row[train_path]] != group_of[row[test_path]], (
        "these two are copies of one photo: look among strangers"
    )
    pair_score = S[row[train_path], row[test_path]]
    assert abs(pair_score - score) < 5e-4, (
        f"score {score} is not the cosine of these two images ({pair_score:.3f})"
    )
    # Oracle: scikit-learn ranks every training image for every test image by cosine distance.
    train = np.flatnonzero(manifest["split"].to_numpy() == "train")
    test = np.flatnonzero(manifest["split"].to_numpy() == "test")
    dist, nearest = (
        NearestNeighbors(metric="cosine").fit(X[train]).kneighbors(X[test], n_neighbors=len(train))
    )
    best = 1 - dist[group_of[train][nearest] != group_of[test][:, None]].min()
    assert pair_score >= best - 1e-6, (
        f"{train_path} and {test_path} score {pair_score:.3f}; a train/test pair from different groups "
        f"scores {best:.3f}"
    )
    assert isinstance(flags_as_leak, bool | np.bool_), "flags_as_leak: True or False"
    assert shares in ("source photo", "label", "neither"), 'shares: "source photo", "label" or "neither"'
    strangers = group_of[train][:, None] != group_of[test][None, :]
    flagged = int(np.sum(strangers & (np.asarray(S)[np.ix_(train, test)] > lowest_copy_score)))
    assert isinstance(n_flagged, int | np.integer) and not isinstance(n_flagged, bool), (
        "n_flagged: a whole number"
    )
    assert n_flagged == flagged, (
        f"n_flagged = {n_flagged} is too {'high' if n_flagged > flagged else 'low'}: count every "
        "train x test pair from different groups (not different source photos) whose score is above "
        "lowest_copy['cos_with_original']"
    )
    # Two answers with few possible values: one message for both, so that trying values finds neither.
    a, b = manifest.iloc[row[train_path]], manifest.iloc[row[test_path]]
    share = (
        "source photo" if a["source"] == b["source"] else "label" if a["label"] == b["label"] else "neither"
    )
    assert flags_as_leak == (pair_score > lowest_copy_score) and shares == share, (
        "flags_as_leak and shares are not both right: work both out in code (the pair's score against "
        "lowest_copy['cos_with_original']; manifest['source'] and manifest['label'] of its two rows)"
    )
    print(
        f"Correct! {train_path} and {test_path}, cos = {pair_score:.3f} "
        f"({'above' if flags_as_leak else 'below'} the lowest copy, {lowest_copy_score:.3f}); "
        f"they share: {shares}; that threshold flags {flagged} train/test pairs of strangers"
    )
