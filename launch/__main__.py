"""`python -m launch` runs the `logdeck` command."""

import sys

from launch.cli import main

sys.exit(main())
