# The access-audit image: worker, API/console and scheduler share it (see docker-compose.yml).
# Built from the wheel, as pip and pipx install it: the rule pack, the notification templates and
# the Kibana saved objects travel inside the package (setup.py copies detectors/, notifications/
# and deploy/kibana/ into it).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY src ./src
COPY detectors ./detectors
COPY notifications ./notifications
COPY deploy/kibana ./deploy/kibana
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --home /data access-audit && mkdir -p /data && chown access-audit /data
USER access-audit
WORKDIR /data
ENV ACCESS_AUDIT_DATA_DIR=/data
ENTRYPOINT ["access-audit"]
CMD ["--help"]
