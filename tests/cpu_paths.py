"""The CPU kernel paths the tests run: every one this CPU has, as the library itself reports.

The `kernel_path` fixture (conftest.py) parametrizes a test over supported(); RAN collects the
paths that really ran, and the run ends with summary()'s line, so a path the machine lacks is
named as not run instead of being silently replaced by another.
"""

# Every path the kernel has (cpu_features.cpp): x86-64's, then aarch64's.
ALL = ("portable", "avx2", "avx512", "amx", "neon", "neon_bf16")
PATH_ENV = "BLITZ_ACL_CPU_PATH"
RAN = set()


def parse(info: str) -> tuple:
    """The paths in blitzCpuDeviceInfo's text (its `paths=a,b,c` field)."""
    field = next((w for w in info.replace(";", " ").split() if w.startswith("paths=")), None)
    if field is None:
        raise AssertionError(f"the CPU device did not report its kernel paths: {info}")
    paths = tuple(field[len("paths="):].split(","))
    unknown = sorted(set(paths) - set(ALL))
    if unknown or "portable" not in paths:
        raise AssertionError(f"unexpected kernel paths {paths} in: {info}")
    return paths


def supported() -> tuple:
    from blitz_acl.devices import library

    return parse(library.load().device_info())


def summary() -> str:
    ran = [p for p in ALL if p in RAN]
    missing = [p for p in ALL if p not in RAN]
    return f"CPU kernel paths tested: {', '.join(ran)}; not run here: {', '.join(missing) or 'none'}"
