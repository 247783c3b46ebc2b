# The access-audit image: worker, API/console and scheduler share it (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY detectors ./detectors
COPY notifications ./notifications
RUN pip install --no-cache-dir -e . && useradd --system --home /data access-audit && mkdir -p /data \
    && chown access-audit /data
USER access-audit
ENV ACCESS_AUDIT_DATA_DIR=/data
ENTRYPOINT ["access-audit"]
CMD ["--help"]
