"""Fixtures shared by the suites that call the CPU device library directly."""

import sys
from pathlib import Path

import pytest

# The repository's tools (bench, aclnn_gen) are not installed: reachable from any test, whichever
# others run with it. Appended, so blitz_acl still comes from where the run installed it.
_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.append(_REPO_ROOT)


@pytest.fixture(scope="module")
def lib():
    """The CPU device library, loaded and with its device set, as the binding uses it."""
    from blitz_acl.devices import cpu, library

    loaded = library.load()
    cpu.ensure_device(loaded)
    return loaded



# ---- CPU kernel paths: a test taking `kernel_path` runs once per path this CPU has (cpu_paths.py) ----


def pytest_generate_tests(metafunc):
    if "kernel_path" in metafunc.fixturenames:
        import cpu_paths

        metafunc.parametrize("kernel_path", cpu_paths.supported(), indirect=True)


@pytest.fixture
def kernel_path(request, monkeypatch):
    """Forces one kernel path (BLITZ_ACL_CPU_PATH, read by the binding at each call and passed down)."""
    import cpu_paths

    monkeypatch.setenv(cpu_paths.PATH_ENV, request.param)
    cpu_paths.RAN.add(request.param)
    return request.param


def pytest_terminal_summary(terminalreporter):
    """A line naming the kernel paths that ran, so a green run on an AVX2-only machine is not
    mistaken for coverage of AVX-512 (or of AMX, which only AMX machines can run)."""
    import sys

    cpu_paths = sys.modules.get("cpu_paths")
    if cpu_paths is not None and cpu_paths.RAN:
        terminalreporter.write_line(cpu_paths.summary())
