"""`python -m replay_server --replay FILE`: serve recorded answers on 127.0.0.1."""

import sys

from replay_server.cli import main

sys.exit(main())
