"""`python -m cpi_cert_rotate` runs the command line tool."""

import sys

from .cli import main

sys.exit(main())
