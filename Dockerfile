# Easel: one image for every role (easel run / gateway / worker / web).
# Dependencies are installed in their own layer from pyproject.toml alone, so a code change
# rebuilds only the last layers. pgserver (the embedded PostgreSQL of `easel chat`, 34 MB of
# server binaries) is left out: in a container DATABASE_URL always points at a real server.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EASEL_DATA_DIR=/data EASEL_WEB_PORT=8080 EASEL_HEALTH_PORT=8081

WORKDIR /app
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
open('/tmp/requirements.txt', 'w').write('\n'.join(d for d in deps if not d.startswith('pgserver')))" \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY README.md ./
COPY bot ./bot
COPY core ./core
COPY adapters ./adapters
COPY migrations ./migrations
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 easel && mkdir -p /data && chown easel:easel /data

USER 10001
EXPOSE 8080 8081
# Every role answers on EASEL_HEALTH_PORT (worker and gateway serve no other HTTP).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["easel", "health"]
CMD ["easel", "run"]
