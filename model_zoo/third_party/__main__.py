"""``python -m model_zoo.third_party``: build third-party-style files and print what they are."""

import sys

from .checks import main

sys.exit(main())
