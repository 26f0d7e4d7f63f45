# The Action's image: Debian bookworm's own python3 in a venv, requirements pinned with
# hashes, and nothing but the package and the entrypoint (no cf_sandbox, no tests).
# The base is pinned by digest; CI builds the same Dockerfile on a debootstrapped
# bookworm with --build-arg BASE_IMAGE=... because it cannot pull from Docker Hub.
ARG BASE_IMAGE=debian:bookworm-slim@sha256:67b30a61dc87758f0caf819646104f29ecbda97d920aaf5edc834128ac8493d3
FROM ${BASE_IMAGE}

COPY requirements/runtime.txt /tmp/runtime.txt

# One layer, so that what is removed at the end never reaches the image: apt lists,
# pip and setuptools (not needed at run time), and python3-venv with what it pulls in
# (needed only to create the venv; autoremove would keep them as "suggested").
# Debian package versions are not pinned on purpose (DL3008): the base digest fixes the
# release, and a pinned version vanishes from the mirror with the next security update,
# breaking every user's build. Python packages are pinned with hashes.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      --require-hashes --no-deps --only-binary=:all: -r /tmp/runtime.txt \
 && /opt/venv/bin/pip uninstall -y --no-cache-dir --disable-pip-version-check pip setuptools \
 && apt-get purge -y python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl \
      python3-distutils python3-lib2to3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log /tmp/runtime.txt

COPY src/cpi_cert_rotate /action/cpi_cert_rotate
COPY entrypoint.py /action/entrypoint.py

# No USER and no WORKDIR: the runner runs actions as root and makes /github/workspace
# the working directory. Exec form with an absolute path; -E -s ignore PYTHON* variables
# and user site-packages from the workflow's environment, -u keeps log order, -B writes
# no bytecode (the image may run read-only).
ENTRYPOINT ["/opt/venv/bin/python", "-B", "-E", "-s", "-u", "-X", "utf8", "/action/entrypoint.py"]
