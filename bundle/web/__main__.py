"""``python -m bundle.web``: the page for asking questions about a volume (see :mod:`bundle.web.cli`)."""

import sys

from bundle.web.cli import main

if __name__ == "__main__":
    sys.exit(main())
