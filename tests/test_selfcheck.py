"""The helpers every lesson's self-checks share (embedkit.selfcheck): what a learner's function reaches,
switching the package's functions off, and stand-ins."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.spatial.distance

from embedkit import similarity
from embedkit.selfcheck import code_switched_off, is_stand_in, library_names, reached, stand_in, switched_off


def _helper(a):  # a helper of the learner's, which hides the library call
    return scipy.spatial.distance.cosine(a, a)


def test_library_names_follow_helpers_defaults_and_closures():
    def through_a_helper(a, b):
        return _helper(a) + float(np.dot(a, b))

    def through_a_default(a, b, measure=similarity.cosine_similarity):
        return measure(a, b)

    def through_a_closure():
        measure = scipy.spatial.distance.cosine
        return lambda a, b: measure(a, b)

    def by_hand(a, b):
        return float(np.dot(a, b))

    assert library_names(through_a_helper, ["scipy"]) == ["scipy"]
    assert library_names(through_a_default, ["embedkit"]) == ["a value through_a_default holds"]
    assert library_names(through_a_closure(), ["scipy"]) == ["a value <lambda> holds"]
    assert library_names(by_hand, ["scipy", "sklearn", "embedkit"]) == []
    functions, used = reached(through_a_helper)
    assert functions == [through_a_helper, _helper] and ("np", np) in used


def test_code_switched_off_refuses_every_name_and_puts_the_code_back():
    from embedkit.similarity import cosine_similarity as imported  # a name the switch does not touch

    before = similarity.cosine_similarity.__code__
    with code_switched_off([similarity.cosine_similarity], "write it yourself"):
        for call in (similarity.cosine_similarity, imported):
            with pytest.raises(AssertionError, match="write it yourself"):
                call([1.0, 0.0], [1.0, 0.0])
    assert similarity.cosine_similarity.__code__ is before
    with pytest.raises(ZeroDivisionError), code_switched_off([similarity.cosine_similarity], "no"):
        raise ZeroDivisionError  # an error inside the block: the code is put back all the same
    assert imported([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1.0)


def test_switched_off_patches_attributes_and_restores_them():
    original = similarity.pairwise_cosine
    with switched_off([(similarity, "pairwise_cosine")], "not here"):
        with pytest.raises(AssertionError, match="not here"):
            similarity.pairwise_cosine(np.eye(2))
    assert similarity.pairwise_cosine is original


def test_a_stand_in_wraps_a_function_and_marks_a_class_as_it_is():
    wrapped = stand_in(similarity.cosine_similarity)
    assert is_stand_in(wrapped) and not is_stand_in(similarity.cosine_similarity)
    assert wrapped([1.0, 0.0], [0.0, 1.0]) == pytest.approx(0.0)

    class Actor:
        pass

    assert stand_in(Actor) is Actor and is_stand_in(Actor)


def test_lessons_before_07_check_without_faiss_or_ray():
    # Colab installs FAISS and Ray for lesson 07 only: earlier lessons' checks must import without them.
    code = (
        "import sys; sys.modules['faiss'] = None; sys.modules['ray'] = None\n"
        "import importlib\n"
        "for n in range(7): importlib.import_module(f'embedkit.selfcheck.lesson0{n}')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_not_written_tells_the_untouched_stub_from_a_missing_return():
    from embedkit.selfcheck import is_stub, not_written

    def stub(x):
        """The exercise."""
        return None  # your code here

    def stub_with_given_lines(x):
        x = 2 * x
        return None  # your code here

    def forgot_return(x):
        x * 2

    def written(x):
        return x * 2

    class Stub:
        def __call__(self, x):
            pass

    assert is_stub(stub) and is_stub(Stub) and is_stub(stub_with_given_lines)
    assert not is_stub(forgot_return) and not is_stub(written)
    assert not_written(stub, 1) and not_written(stand_in(written), 1)
    assert not not_written(written, 1)
    with pytest.raises(AssertionError, match="forgot_return returned None: did you forget `return`"):
        not_written(forgot_return, 1)
