"""``python -m pytest_certload.cleanup``: see :mod:`.cli`."""

import sys

from .cli import main

sys.exit(main())
