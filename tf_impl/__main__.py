"""``python -m tf_impl``: see :mod:`tf_impl.cli`."""

import sys

from .cli import main

sys.exit(main())
