"""`python -m tunelab.cli ...`: the same as the `tunelab` command."""

import sys

from tunelab.cli.commands import main

sys.exit(main())
