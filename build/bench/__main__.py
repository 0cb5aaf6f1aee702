"""`python -m build.bench`."""

import sys

from build.bench.cli import main

sys.exit(main())
