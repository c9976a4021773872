"""python -m blitz_acl --include-dir | --library: paths for building C programs against the CPU
device library (e.g. cc -I "$(python -m blitz_acl --include-dir)" ...)."""

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blitz_acl", description=__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--include-dir", action="store_true", help="directory of the public C headers")
    what.add_argument("--library", action="store_true", help="path of libblitz_cpu.so the binding loads")
    args = parser.parse_args(argv)
    if args.include_dir:
        from .headers import include_dir
        print(include_dir())
    else:
        from .devices import library
        print(library.load().path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
