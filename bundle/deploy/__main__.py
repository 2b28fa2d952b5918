"""``python -m bundle.deploy -i IN -o OUT --query "TEXT"``: the MediSee MONAI Deploy app (:mod:`bundle.deploy.cli`)."""

import sys

from bundle.deploy.cli import main

if __name__ == "__main__":
    sys.exit(main())
