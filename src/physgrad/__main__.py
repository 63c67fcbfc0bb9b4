"""``python -m physgrad`` == the ``physgrad`` command."""

import sys

from physgrad.cli import main

sys.exit(main())
