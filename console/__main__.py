"""`python -m console` runs the `logdeck` command."""

import sys

from console.cli import main

sys.exit(main())
