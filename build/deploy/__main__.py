"""`python -m build.deploy`."""

import sys

from build.deploy.cli import main

sys.exit(main())
