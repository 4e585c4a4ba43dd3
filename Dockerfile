# Steward's container image. Build from the repository root:
#
#   docker build -t steward:0.1.0 .
#
# The entry point is the `steward` command and the default command is
# `steward serve`. Migrations are an explicit step, run once per release
# before the new version starts: `docker run --rm IMAGE db upgrade`.
# The scheduled jobs and the outbox run in one `IMAGE worker` container.

# The builder and the final stage use the same base image, because the
# virtual environment's interpreter links to /usr/local/bin/python3.11.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/steward

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY connectors ./connectors
COPY governance ./governance
COPY migrations ./migrations
COPY quickstart ./quickstart

# Build Steward's wheel, then install it with its runtime dependencies only
# (no test extras) into a virtual environment that the final stage copies.
RUN python -m pip wheel --no-deps --wheel-dir dist . \
    && python -m venv "$VIRTUAL_ENV" \
    && "$VIRTUAL_ENV/bin/pip" install dist/steward-*.whl


FROM ${PYTHON_IMAGE}

ENV VIRTUAL_ENV=/opt/steward \
    PATH=/opt/steward/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STEWARD_SERVER__HOST=0.0.0.0

RUN groupadd --system --gid 10001 steward \
    && useradd --system --no-log-init --uid 10001 --gid steward \
        --home-dir /var/lib/steward --create-home --shell /usr/sbin/nologin steward

COPY --from=builder /opt/steward /opt/steward

# The default SQLite database (steward.db) lands here; mount a volume to
# keep it. Production uses PostgreSQL (STEWARD_DATABASE_URL).
WORKDIR /var/lib/steward
USER 10001:10001

EXPOSE 3000

# /healthz returns 200 while the process runs. The check reads the port from
# STEWARD_SERVER__PORT like Steward does (a port set in a config file is not
# seen), and bypasses any HTTP proxy the environment sets for reaching Slack.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/healthz' % os.environ.get('STEWARD_SERVER__PORT', '3000'), timeout=4)"]

ENTRYPOINT ["steward"]
CMD ["serve"]
