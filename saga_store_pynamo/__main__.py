"""``python -m saga_store_pynamo``: the ``saga-store`` command."""

import sys

from .cli import main

sys.exit(main())
