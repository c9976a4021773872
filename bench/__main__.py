"""`python -m bench`: see bench/run.py for the sweep and the arguments."""

from bench.run import main

raise SystemExit(main())
