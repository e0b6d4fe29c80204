"""Single entry point: ``python -m launch <subcommand> ...`` (``--help`` lists them)."""

import sys

from launch.cli import main

if __name__ == "__main__":
    sys.exit(main())
