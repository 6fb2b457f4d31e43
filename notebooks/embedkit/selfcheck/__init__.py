"""Self-checks for the lessons' exercises: one module per lesson (``lesson00`` ... ``lesson07``).

A lesson asks the learner to write a function, then calls a check from here in one short cell::

    from embedkit.selfcheck import lesson03
    cosine = lesson03.check_cosine(cosine)

Each check either prints ``Correct!`` (and returns the learner's function), raises an
``AssertionError`` that says what is wrong and what to try, or, while the exercise still returns
``None``, prints "Not done yet" and returns the package's version marked as a stand-in, so every
later cell still runs. The checks compare against independent oracles (SciPy, scikit-learn,
cases worked out by hand), and switch the package's and the libraries' own versions off while the
learner's function runs, so that a call to them is not taken for an answer.

The checks are code a learner may read, but need not: ``tests/test_selfcheck_lessonNN.py`` shows, for
each check, the right answer passing and plausible wrong answers failing.

This module holds what every lesson's checks share.
"""

from __future__ import annotations

import builtins
import contextlib
import dis
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from unittest import mock

__all__ = [
    "LIBRARIES",
    "library_cosines",
    "reached",
    "library_names",
    "code_switched_off",
    "switched_off",
    "stand_in",
    "is_stand_in",
    "is_stub",
    "not_written",
    "returned_none",
    "not_done",
]


#: Each has a cosine of its own: a check turns away a function that reaches into one of them.
LIBRARIES = ("scipy", "sklearn", "torch", "embedkit")


def library_cosines() -> list[tuple[Any, str]]:
    """The libraries' and the package's cosines and normalisations, as ``(module, attribute)`` for
    ``switched_off`` while the learner's function runs. Imported here, on first use, so that a
    lesson's checks that need none of them do not load PyTorch."""
    import scipy.spatial.distance
    import sklearn.metrics.pairwise
    import sklearn.preprocessing
    import torch
    import torch.nn.functional as F

    import embedkit.similarity

    return [
        (scipy.spatial.distance, "cosine"),
        (scipy.spatial.distance, "correlation"),
        (scipy.spatial.distance, "cdist"),
        (scipy.spatial.distance, "pdist"),
        (sklearn.metrics.pairwise, "cosine_similarity"),
        (sklearn.metrics.pairwise, "cosine_distances"),
        (sklearn.metrics.pairwise, "paired_cosine_distances"),
        (sklearn.preprocessing, "normalize"),
        (torch, "cosine_similarity"),
        (F, "cosine_similarity"),
        (F, "normalize"),
        (embedkit.similarity, "cosine_similarity"),
        (embedkit.similarity, "pairwise_cosine"),
    ]


def reached(function: Callable) -> tuple[list[Callable], list[tuple[str, Any]]]:
    """What ``function`` reaches: the learner's own functions it uses (itself first), and every
    ``(name, object)`` their code names or holds.

    Followed through: nested functions and lambdas, default values and closures (named "a value
    F holds"), and every function of the learner's own module (the notebook's ``__main__``) that
    it calls, so a helper does not hide what it uses.
    """
    functions: list[Callable] = []
    used: list[tuple[str, Any]] = []
    todo = [function]
    while todo:
        f = todo.pop()
        if any(f is g for g in functions) or not inspect.isfunction(f):
            continue
        functions.append(f)
        codes, names = [f.__code__], set()
        while codes:
            code = codes.pop()
            names |= set(code.co_names)
            codes += [c for c in code.co_consts if inspect.iscode(c)]
        held = [
            *(f.__defaults__ or ()),
            *(f.__kwdefaults__ or {}).values(),
            *(c.cell_contents for c in f.__closure__ or ()),
        ]
        things = [(name, f.__globals__.get(name, getattr(builtins, name, None))) for name in sorted(names)]
        things += [(f"a value {f.__name__} holds", value) for value in held]
        used += things
        own = [thing for _, thing in things if inspect.isfunction(thing) and thing.__module__ == f.__module__]
        todo += own
    return functions, used


def library_names(function: Callable, libraries: Iterable[str]) -> list[str]:
    """The names ``function``'s code uses that lead into one of ``libraries`` (top-level package names),
    followed through as :func:`reached` follows. Returns the offending names, sorted; empty when none.
    """
    libraries = tuple(libraries)
    found = set()
    for name, thing in reached(function)[1]:
        where = thing.__name__ if inspect.ismodule(thing) else getattr(thing, "__module__", "")
        if any(str(w).split(".")[0] in libraries for w in (name, where)):
            found.add(name)
    return sorted(found)


def _refuse(*args, **kwargs):
    raise AssertionError("MESSAGE")


@contextlib.contextmanager
def code_switched_off(functions: Iterable[Callable], message: str) -> Iterator[None]:
    """While the block runs, each of ``functions`` raises ``AssertionError(message)``, under any name.

    The function's code is swapped, so a name imported from the package (``from embedkit.splits import
    leak_report``) or a reference kept elsewhere is switched off too. Put back when the block ends, on
    an error too. For plain functions without a closure (a package's module-level functions).
    """
    code = _refuse.__code__  # no closure, so it can take the place of any such function's code
    refusal = code.replace(co_consts=tuple(message if c == "MESSAGE" else c for c in code.co_consts))
    saved = [(f, f.__code__) for f in functions]
    try:
        for f, _ in saved:
            f.__code__ = refusal
        yield
    finally:
        for f, original in saved:
            f.__code__ = original


@contextlib.contextmanager
def switched_off(targets: Iterable[tuple[Any, str]], message: str) -> Iterator[None]:
    """While the block runs, each ``(module_or_class, attribute)`` raises ``AssertionError(message)``.

    Everything is put back when the block ends, on an error too.
    """

    def refuse(*args, **kwargs):
        raise AssertionError(message)

    with contextlib.ExitStack() as stack:
        for owner, name in targets:
            stack.enter_context(mock.patch.object(owner, name, refuse))
        yield


def stand_in(function: Callable) -> Callable:
    """A copy of ``function`` marked as the package's stand-in for an exercise not done yet.

    The package's own function is wrapped, never marked itself (see ``is_stand_in``). A class (a
    check's own stand-in actor, which Ray must find by name) is marked as it is.
    """
    if inspect.isclass(function):
        function.stand_in = True
        return function

    @functools.wraps(function)
    def standing_in(*args, **kwargs):
        return function(*args, **kwargs)

    standing_in.stand_in = True
    return standing_in


def is_stand_in(function: Callable) -> bool:
    """True for a function made by ``stand_in``: a check run twice does not take it for the learner's."""
    return getattr(function, "stand_in", False)


def is_stub(code: Any) -> bool:
    """True for an exercise's untouched stub: a function whose body only returns ``None`` (``return None``,
    ``pass`` or ``...``), or a class whose own methods are all such functions."""
    if isinstance(code, type):
        methods = [f for f in vars(code).values() if inspect.isfunction(f)]
        return bool(methods) and all(map(is_stub, methods))
    if not inspect.isfunction(code):
        return False
    steps = [
        (i.opname, i.argval) for i in dis.get_instructions(code) if i.opname not in ("RESUME", "NOP", "CACHE")
    ]
    if steps in ([("RETURN_CONST", None)], [("LOAD_CONST", None), ("RETURN_VALUE", None)]):
        return True
    try:  # a stub that gives its first lines still ends on the stub's own line
        lines = inspect.getsource(code).rstrip().splitlines()
    except (OSError, TypeError):
        return False
    return bool(lines) and lines[-1].strip() in _STUB_ENDINGS


#: The last line of an exercise's stub that gives some lines of the function before it.
_STUB_ENDINGS = ("return None  # your code here", "return None  # your function here")


def returned_none(name: str) -> AssertionError:
    """The failure for written code that returned ``None``."""
    return AssertionError(f"your function {name} returned None: did you forget `return`?")


def not_written(function: Callable, *probe: Any) -> bool:
    """True while ``function`` is a stand-in or the untouched stub; written code that returns ``None`` for
    ``probe`` fails (a missing ``return``) instead of passing for "not done yet"."""
    if is_stand_in(function) or is_stub(function):
        return True
    if function(*probe) is None:
        raise returned_none(getattr(function, "__name__", "the function"))
    return False


def not_done(what: str, instead: str) -> None:
    """Print the line a check prints while an exercise still returns ``None``."""
    print(f"Not done yet: {what}; the cells below run {instead} in its place")
