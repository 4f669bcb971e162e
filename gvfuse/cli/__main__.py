"""``python -m gvfuse.cli``: the ``gvfuse`` command."""

import sys

from gvfuse.cli import main

sys.exit(main())
