# One image per service, from one Dockerfile: the build argument SERVICE picks which
# (gateway, customer, product, sync or analytics).
#   docker build --build-arg SERVICE=customer -t ecom/customer .
# `make images` builds all five on top of a base made by deploy/docker/base-image.sh.
#
# The container runs as uid 10001, needs no writable path but /tmp, and takes a command:
#   serve (default)   the HTTP service on $PORT (8000)
#   migrate           upgrade the service's database to the latest migration, then exit
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG UV_VERSION=0.13.9
# deploy/docker/certs/ may hold the CA bundle of a TLS-inspecting proxy between this build and PyPI
# (make images copies the host's there). Only this stage sees it.
COPY deploy/docker/certs/ /tmp/certs/
RUN set -eu; \
    ca=/tmp/certs/ca-certificates.crt; [ -s "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt; \
    python3 -m venv /opt/uv; \
    SSL_CERT_FILE="$ca" PIP_CERT="$ca" /opt/uv/bin/pip install --no-cache-dir --quiet "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PYTHON=python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv UV_NO_CACHE=1
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs libs
COPY gateway gateway
COPY services services
COPY cli cli
ARG SERVICE
# Install the chosen service and the libraries it uses (editable, so each service still finds its
# alembic.ini beside its source), drop the tests, compile the sources, and assemble /out.
# The gateway image also carries the `ecom` CLI (users, clients, keys, dlq replay) for operators.
RUN set -eu; \
    case "${SERVICE:?build with --build-arg SERVICE=gateway|customer|product|sync|analytics}" in \
        gateway) dir=gateway; package=ecom-gateway; module=gateway; extra=cli ;; \
        customer|product|sync|analytics) dir="services/${SERVICE}-service"; package="${SERVICE}-service"; \
            module="${SERVICE}_service" ;; \
        *) echo "unknown SERVICE=${SERVICE}" >&2; exit 1 ;; \
    esac; \
    ca=/tmp/certs/ca-certificates.crt; [ -s "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt; \
    SSL_CERT_FILE="$ca" /opt/uv/bin/uv sync --frozen --no-dev --package "$package"; \
    if [ -n "${extra:-}" ]; then \
        SSL_CERT_FILE="$ca" /opt/uv/bin/uv sync --frozen --no-dev --inexact --package ecom-cli; \
        mkdir -p /out/app && cp -a cli /out/app/cli && rm -rf /out/app/cli/tests; \
    fi; \
    mkdir -p "/out/app/$(dirname "$dir")"; \
    cp -a .venv /out/app/.venv; \
    cp -a libs /out/app/libs; \
    cp -a "$dir" "/out/app/$dir"; \
    rm -rf /out/app/libs/*/tests "/out/app/$dir/tests"; \
    /app/.venv/bin/python -m compileall -q /out/app; \
    printf 'SERVICE=%s\nSERVICE_DIR=/app/%s\nSERVICE_MODULE=%s\n' "$SERVICE" "$dir" "$module" \
        > /out/app/service.env

FROM ${BASE_IMAGE} AS runtime
COPY --from=build /out/app /app
COPY deploy/docker/entrypoint.sh /usr/local/bin/ecom-entrypoint
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    PORT=8000 \
    ENVIRONMENT=production
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s --retries=3 CMD ["ecom-entrypoint", "healthcheck"]
ENTRYPOINT ["ecom-entrypoint"]
CMD ["serve"]
