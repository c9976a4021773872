"""build_kernel.sh replaces blitz_acl/_lib/libblitz_cpu.so atomically.

Overwriting a mapped shared library in place changes the code under every process that has it
loaded (seen as a bus error in a running test); the script must copy to a temporary name in
the same directory and rename it over the old file, so existing mappings keep the old inode.
"""

import mmap
import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "build_kernel.sh"


def _install(src: Path, dest: Path) -> subprocess.CompletedProcess:
    if not SCRIPT.exists():
        pytest.skip("build_kernel.sh is not in this checkout (installed package)")
    # Only the function under test: running the whole script would rebuild the library.
    code = (f'eval "$(sed -n \'/^install_atomically()/,/^}}/p\' "{SCRIPT}")"\n'
            f'install_atomically "{src}" "{dest}"\n')
    return subprocess.run(["bash", "-c", code], capture_output=True, text=True)


def test_replacement_is_a_rename_that_keeps_existing_mappings(tmp_path):
    dest = tmp_path / "_lib" / "libblitz_cpu.so"
    dest.parent.mkdir()
    dest.write_bytes(b"old library " * 100)
    new = tmp_path / "new.so"
    new.write_bytes(b"new library " * 200)
    with open(dest, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)  # as the loader maps a .so
        old_inode = os.fstat(f.fileno()).st_ino
        run = _install(new, dest)
        assert run.returncode == 0, run.stderr
        assert mapped[:12] == b"old library ", "the mapped file was written in place"
        mapped.close()
    assert dest.read_bytes() == new.read_bytes()
    assert os.stat(dest).st_ino != old_inode
    assert os.access(dest, os.X_OK)
    assert [p.name for p in dest.parent.iterdir()] == [dest.name], "a temporary file was left behind"


def test_failed_copy_leaves_the_old_library_and_no_temporary(tmp_path):
    dest = tmp_path / "libblitz_cpu.so"
    dest.write_bytes(b"old")
    run = _install(tmp_path / "missing.so", dest)
    assert run.returncode != 0 and "could not install" in run.stderr
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]
