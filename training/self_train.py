"""Old name of the self-training command, kept as an alias: use ``python -m self_training``."""

import sys

from self_training.loop import cli

if __name__ == "__main__":
    sys.exit(cli())
