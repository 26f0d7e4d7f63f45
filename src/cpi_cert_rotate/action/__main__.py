"""`python -m cpi_cert_rotate.action` runs the Action, as entrypoint.py does."""

from .step import main

raise SystemExit(main())
