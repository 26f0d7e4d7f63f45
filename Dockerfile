# The Action's image: Debian bookworm's own Python 3.11, the pinned wheels in a venv,
# the package, and byte code for what the Action imports; nothing else (no pip, no
# cf_sandbox, no tests). docs/image.md gives the measured size and start time and how
# the release image is built, attested and pinned.
# The base is pinned by digest; CI builds the same Dockerfile on a debootstrapped
# bookworm with --build-arg BASE_IMAGE=... because it cannot pull from Docker Hub.
ARG BASE_IMAGE=debian:bookworm-slim@sha256:67b30a61dc87758f0caf819646104f29ecbda97d920aaf5edc834128ac8493d3

# Stage 1: pip, the venv tools and binutils exist only here.
FROM ${BASE_IMAGE} AS build
# Debian package versions are not pinned on purpose (DL3008): the base digest fixes the
# release, and a pinned version vanishes from the mirror with the next security update,
# breaking every user's build. Python packages are pinned with hashes.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv binutils \
 && rm -rf /var/lib/apt/lists/*
COPY requirements/runtime.txt /tmp/runtime.txt
# --no-deps: exactly the pinned set, which leaves out what actions-toolkit and cffi
# declare but the Action never imports (requirements/runtime.in says which and why).
# The wheels' extension modules carry symbol tables and debug info (3 MB in
# cryptography's, 2 MB in PyYAML's) that nothing reads at run time.
RUN python3.11 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile \
      --require-hashes --no-deps --only-binary=:all: -r /tmp/runtime.txt \
 && /opt/venv/bin/pip uninstall -y --no-cache-dir --disable-pip-version-check pip setuptools \
 && rm -f /opt/venv/bin/Activate.ps1 /opt/venv/bin/activate* \
 && find /opt/venv -name '*.so' -exec strip --strip-unneeded {} +
COPY src/cpi_cert_rotate /action/cpi_cert_rotate
COPY entrypoint.py /action/entrypoint.py
COPY scripts/image_modules.py /tmp/image_modules.py
# Byte code only for the modules the Action imports (scripts/image_modules.py lists
# them), with hashes rather than timestamps so every build writes the same files.
RUN /opt/venv/bin/python -B /tmp/image_modules.py /usr/lib/python3.11/ > /tmp/stdlib.txt \
 && /opt/venv/bin/python -B /tmp/image_modules.py /opt/venv/ /action/ > /tmp/ours.txt \
 && python3.11 -m compileall -q --invalidation-mode checked-hash -i /tmp/ours.txt

# Stage 2: the runtime. python3.11 without the python3 metapackage (the venv points at
# /usr/bin/python3.11) and without ca-certificates: the Action trusts certifi's bundle
# (pinned in the venv) plus a CA given as input (src/cpi_cert_rotate/mtls.py).
# Debian byte-compiles the whole standard library on install (12 MB); only what the
# Action imports is kept, recompiled in the same layer. (The unused parts of the
# standard library stay: python3.11's postinst fails when dpkg leaves any of them out.)
FROM ${BASE_IMAGE}
# (a COPY, not RUN --mount: the runner's `docker build` of this file must also work
# without BuildKit, on older self-hosted runners)
COPY --from=build /tmp/stdlib.txt /tmp/stdlib.txt
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 \
 && find /usr/lib/python3.11 -name __pycache__ -prune -exec rm -rf {} + \
 && python3.11 -m compileall -q -i /tmp/stdlib.txt \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
      /var/lib/dpkg/*-old /var/cache/debconf/*-old /tmp/stdlib.txt
COPY --from=build /opt/venv /opt/venv
COPY --from=build /action /action

# No USER and no WORKDIR: the runner runs actions as root and makes /github/workspace
# the working directory. Exec form with an absolute path; -E -s ignore PYTHON* variables
# and user site-packages from the workflow's environment, -u keeps log order, -B writes
# no bytecode (the image may run read-only; the .pyc files above are already there).
ENTRYPOINT ["/opt/venv/bin/python", "-B", "-E", "-s", "-u", "-X", "utf8", "/action/entrypoint.py"]
