"""``python -m demo``: see :mod:`demo`."""

import sys

from demo.run import main

sys.exit(main())
