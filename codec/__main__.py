"""`python -m codec …` entry point."""

import sys

from codec.cli import main

sys.exit(main())
