"""``python -m pytest_certload.baseline``: see :mod:`.cli`."""

import sys

from .cli import main

sys.exit(main())
