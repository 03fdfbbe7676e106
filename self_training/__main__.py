"""`python -m self_training --config FILE [key=value ...]`."""

import sys

from self_training.loop import cli

sys.exit(cli())
