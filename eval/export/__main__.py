"""`python -m eval.export RUN_DIR --to DIR [--format hf|mmm|conll] [--split 0.8/0.1/0.1]`."""

import sys

from eval.export import main

sys.exit(main())
