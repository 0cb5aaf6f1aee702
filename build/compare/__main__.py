"""`python -m build.compare`."""

import sys

from build.compare.cli import main

sys.exit(main())
