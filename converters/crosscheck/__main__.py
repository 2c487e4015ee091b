"""``python -m converters.crosscheck``: see :mod:`converters.crosscheck.cli`."""

import sys

from .cli import main

sys.exit(main())
