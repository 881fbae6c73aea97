import inspect

import pytest

import mtlkit


@pytest.mark.parametrize("name", [n for n in mtlkit.__all__ if n != "__version__"])
def test_every_public_name_has_a_docstring_with_an_example(name):
    doc = inspect.getdoc(getattr(mtlkit, name)) or ""
    assert doc, f"mtlkit.{name} has no docstring"
    assert ">>>" in doc, f"mtlkit.{name}'s docstring has no runnable example"


def test_version_is_a_release_string():
    major, minor, patch = mtlkit.__version__.split(".")
    assert all(part.isdigit() for part in (major, minor, patch))
