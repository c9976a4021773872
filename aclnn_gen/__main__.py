"""python -m aclnn_gen [--check]"""

import argparse
import sys

from . import OUTPUTS, stale_outputs, write


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aclnn_gen", description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a committed output differs from what the spec generates")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_outputs()
        for path, reason in stale.items():
            print(f"aclnn_gen: {path}: {reason}; run `python -m aclnn_gen`", file=sys.stderr)
        return 1 if stale else 0
    write()
    for path in OUTPUTS:
        print(f"aclnn_gen: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
