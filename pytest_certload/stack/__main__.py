"""``python -m pytest_certload.stack up``: see :mod:`.up`."""

import sys

from .up import main

sys.exit(main())
