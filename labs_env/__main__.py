"""``python -m labs_env`` runs the CLI."""

import sys

from labs_env.cli import main

sys.exit(main())
