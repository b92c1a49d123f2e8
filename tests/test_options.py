"""Option values written as text are read one way: booleans refuse junk, dtypes by name."""

import pytest
import torch

from sete_vsr.errors import SeteVSRError
from sete_vsr.options import DTYPES, as_bool, torch_dtype


@pytest.mark.parametrize("word", ["1", "true", "True", "yes", "ON"])
def test_true_words(word):
    assert as_bool(word) is True


@pytest.mark.parametrize("word", ["0", "false", "FALSE", "no", "off"])
def test_false_words(word):
    assert as_bool(word) is False


@pytest.mark.parametrize("value", ["flase", "", "2", "none"])
def test_junk_is_refused_not_read_as_false(value):
    with pytest.raises(SeteVSRError, match="expected a boolean option"):
        as_bool(value)


def test_non_strings_are_truth_values():
    assert as_bool(True) is True and as_bool(0) is False


def test_dtypes_by_name():
    assert [torch_dtype(name) for name in DTYPES] == [torch.float32, torch.float16, torch.bfloat16]
    with pytest.raises(SeteVSRError, match="dtype must be one of fp32, fp16, bf16, got 'fp64'"):
        torch_dtype("fp64")
