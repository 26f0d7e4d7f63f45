"""Container entrypoint (see Dockerfile): hand over to the GitHub adapter.

`scan/action.yml` passes the single argument `scan` (`runs.args`): the fleet scan.
"""

import sys

if sys.argv[1:] == ["scan"]:
    from cpi_cert_rotate.action.scan import main
else:
    from cpi_cert_rotate.action.step import main

raise SystemExit(main())
