"""Entry point for `python -m gspo_viz`."""
import sys

from .cli import main

sys.exit(main())
