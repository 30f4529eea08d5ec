# Easel: one image for every role (easel run / gateway / worker / web).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    EASEL_DATA_DIR=/data EASEL_WEB_PORT=8080

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY core ./core
COPY adapters ./adapters
COPY migrations ./migrations
RUN pip install . && useradd --create-home --uid 10001 easel && mkdir -p /data \
    && chown easel:easel /data

USER easel
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('EASEL_WEB_PORT','8080'), timeout=4)" || exit 1
CMD ["easel", "run"]
