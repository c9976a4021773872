"""Fixtures shared by the suites that call the CPU device library directly."""

import pytest


@pytest.fixture(scope="module")
def lib():
    """The CPU device library, loaded and with its device set, as the binding uses it."""
    from blitz_acl.runtime import cpu, library

    loaded = library.load()
    cpu._ensure_device(loaded)
    return loaded
