# syntax=docker/dockerfile:1
#
# One Dockerfile for every Coffer service container (used by compose.yaml).
# Two final targets share one install of Coffer (the `app` stage):
#
#   service      api, scheduler, backup, monitor: Python and Coffer only; runs as
#                the unprivileged user `coffer`. The default target.
#   provisioner  the same Coffer install plus what the local compute driver runs:
#                Debian's PostgreSQL 15 server packages (the engines of the
#                instances) and util-linux (setpriv: the agent, running as root,
#                starts each engine as the `postgres` user). Runs as root.
#
# Why two targets rather than one image for all: the engines add about 250 MB
# (PostgreSQL pulls in LLVM, ICU and Perl) and root is needed only where instances
# run, so the four other services get neither. The PostgreSQL layer is built from
# `base`, not on top of Coffer's layers, so editing the code does not reinstall it.
#
#   docker build --target service -t coffer-service .
#   docker build --target provisioner -t coffer-provisioner .

FROM python:3.11-slim-bookworm AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/coffer/venv/bin:$PATH \
    COFFER_HOME=/var/lib/coffer \
    COFFER_SCHEMAS_DIR=/opt/coffer/schemas
# Coffer is installed as a package (not run from a source tree), so the Avro
# schemas, which are not package data, are found through COFFER_SCHEMAS_DIR.

# --- Coffer and its pinned dependencies, in a virtualenv under /opt/coffer ---
FROM base AS app
WORKDIR /src
RUN python -m venv /opt/coffer/venv
COPY pyproject.toml constraints.txt ./
COPY plumbing/ plumbing/
COPY services/ services/
COPY agent/ agent/
COPY coffer/ coffer/
# The cache mount keeps downloaded wheels between builds (BuildKit, the default
# builder of docker compose); nothing of it ends up in the image.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -c constraints.txt .
COPY schemas/ /opt/coffer/schemas/

# --- the provisioner: Coffer + the engines of the local compute driver ---
FROM base AS provisioner
# postgresql-common first, told not to create a "main" cluster: the agents make
# their own data directories under COFFER_HOME. bookworm's PostgreSQL is 15.
# Package versions are not pinned: the Debian release is (by the base image's
# tag), and bookworm-security drops superseded versions, which would break pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && sed -ri 's/^#?\s*create_main_cluster\s*=.*$/create_main_cluster = false/' \
        /etc/postgresql-common/createcluster.conf \
    && grep -qx 'create_main_cluster = false' /etc/postgresql-common/createcluster.conf \
    && apt-get install -y --no-install-recommends postgresql-15 util-linux \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -m 0755 /var/lib/coffer
COPY --from=app /opt/coffer /opt/coffer
COPY --chmod=0755 deploy/provisioner-entrypoint.sh /usr/local/bin/coffer-provisioner
WORKDIR /var/lib/coffer
# root on purpose: the agents drop to the `postgres` user for the engines
# hadolint ignore=DL3002
USER 0
CMD ["coffer-provisioner"]

# --- api, scheduler, backup, monitor (the default target) ---
FROM base AS service
RUN groupadd --system --gid 10001 coffer \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/coffer \
        --shell /usr/sbin/nologin coffer \
    && install -d -o 10001 -g 10001 -m 0755 /var/lib/coffer
COPY --from=app /opt/coffer /opt/coffer
WORKDIR /var/lib/coffer
USER 10001:10001
EXPOSE 8779
CMD ["python", "-m", "services.api"]
