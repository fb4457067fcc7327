# syntax=docker/dockerfile:1
# gcs-model-sync: mirror gs://BUCKET/PREFIX into a TF Serving model base path.
#
#   docker build -t gcs-model-sync .
#   docker run --rm --read-only --tmpfs /tmp -v "$PWD/models:/models" gcs-model-sync \
#       once --source gs://my-bucket/models --dest /models
#
# The base image is pinned by tag; pin it by digest too (python:...@sha256:...) in your
# registry mirror if you need byte-for-byte rebuilds.

# ---- stage 1: build this project's wheel (build tools stay in this stage) ---------------------
FROM python:3.12.8-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY gcs_model_sync/ gcs_model_sync/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- stage 2: runtime ------------------------------------------------------------------------
FROM python:3.12.8-slim-bookworm

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="gcs-model-sync" \
      org.opencontainers.image.description="Mirror a Google Cloud Storage prefix of model versions into a local model base path, atomically." \
      org.opencontainers.image.source="https://github.com/example/gcs-model-sync" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

# A fixed numeric UID/GID (65532, the "nonroot" id of distroless images) so Kubernetes can
# check runAsNonRoot without a passwd lookup, and pod `securityContext.fsGroup: 65532` makes
# shared volumes (emptyDir, PVC) writable by this user and readable by the serving container.
RUN groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin nonroot

# The wheel is bind-mounted from the build stage, so it never lands in a layer. Dependencies
# come as binary wheels (no compiler in this image); bytecode is compiled now, at install
# time, because the root filesystem is read-only at run time.
# EXTRAS=signing adds model-signing, for --signature-key (Sigstore's ~15 packages): build with
# `--build-arg EXTRAS=signing`.
ARG EXTRAS=""
# What is installed is this project's own wheel, named by a variable hadolint cannot read.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    wheel="$(echo /wheels/*.whl)" \
 && pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
        "${wheel}${EXTRAS:+[${EXTRAS}]}"

# Every write goes under --dest (a volume) or TMPDIR (an emptyDir): the root filesystem
# can be mounted read-only.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp

USER 65532:65532

# --http-port: /healthz, /readyz and /metrics for the `run` sidecar.
EXPOSE 8080

# `run` stops at a safe point on SIGTERM: no half-published version is left behind.
STOPSIGNAL SIGTERM
ENTRYPOINT ["gcs-model-sync"]
CMD ["--help"]
