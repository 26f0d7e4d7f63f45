"""List the Python files the Action imports, for the image build to byte-compile.

Run in the Dockerfile's build stage as `python image_modules.py PREFIX...`: imports every
module of the package in /action (lazy imports included, `__main__` excepted, which
would run the CLI) and prints each loaded module's source file under one of PREFIX.
The image keeps .pyc files for exactly these: the rest of the standard library and of
the wheels is compiled only if something ever imports it.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

sys.path.insert(0, "/action")

import cpi_cert_rotate

for info in pkgutil.walk_packages(cpi_cert_rotate.__path__, "cpi_cert_rotate."):
    if not info.name.endswith(".__main__"):
        importlib.import_module(info.name)

prefixes = tuple(sys.argv[1:])
for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None)
    if path and path.endswith(".py") and path.startswith(prefixes):
        print(path)
