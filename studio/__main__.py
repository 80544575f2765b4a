"""Entry point of `python -m studio`."""

import sys

from .cli import main

sys.exit(main())
