# syntax=docker/dockerfile:1
# One image for all four services; the service is the command:
#   docker run kanalhub:0.1.0 registry   (or kvik, mobile, metrics)
# Settings come only from the environment (services/plumbing/settings.py); nothing secret is
# baked in. The embedded broker/Valkey (the `embedded` extra) are not installed here.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: a virtualenv with kanalhub and its runtime dependencies -------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/kanalhub
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
RUN /opt/kanalhub/bin/pip install --upgrade pip \
 && /opt/kanalhub/bin/pip install . \
 && /opt/kanalhub/bin/python -m compileall -q /opt/kanalhub

# --- runtime: the virtualenv only, no compilers, no pip cache, a non-root user ---------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="kanalhub" \
      org.opencontainers.image.description="kanalhub service (registry, kvik, mobile or metrics)" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 kanalhub \
 && useradd --system --uid 10001 --gid kanalhub --no-create-home --shell /usr/sbin/nologin kanalhub
COPY --from=build /opt/kanalhub /opt/kanalhub
COPY deploy/docker/healthcheck.py /usr/local/lib/kanalhub/healthcheck.py
ENV PATH=/opt/kanalhub/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KANALHUB_ENVIRONMENT=production \
    KANALHUB_LOG_FORMAT=json \
    KANALHUB_REGISTRY_HOST=0.0.0.0 \
    KANALHUB_KVIK_HOST=0.0.0.0 \
    KANALHUB_MOBILE_HOST=0.0.0.0 \
    KANALHUB_METRICS_HOST=0.0.0.0
USER 10001:10001
EXPOSE 8001 8002 8003 8004
# GET /healthz on the port of the service this container runs (read from its command line).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/lib/kanalhub/healthcheck.py"]
# SIGTERM -> uvicorn's graceful shutdown: consumers commit, the outbox relay drains, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["kanalhub", "serve"]
CMD ["registry"]
