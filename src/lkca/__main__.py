"""``python -m lkca`` runs the command line."""

import sys

from lkca.cli import main

sys.exit(main())
