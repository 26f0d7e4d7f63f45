"""Container entrypoint (see Dockerfile): hand over to the GitHub adapter."""

from cpi_cert_rotate.action.step import main

raise SystemExit(main())
