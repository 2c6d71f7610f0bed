# One image per service, built from the workspace:
#   docker build --build-arg SERVICE_DIR=services/customer-service --build-arg PACKAGE=customer_service \
#                --build-arg UV_PACKAGE=customer-service .
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs libs
COPY gateway gateway
COPY services services
COPY cli cli
ARG UV_PACKAGE
RUN uv sync --frozen --no-dev --package "${UV_PACKAGE}"

FROM python:3.11-slim
RUN useradd --system --uid 10001 app
WORKDIR /app
COPY --from=build /app /app
ARG SERVICE_DIR
ARG PACKAGE
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    SERVICE_DIR=/app/${SERVICE_DIR} \
    APP_MODULE=${PACKAGE}.main:app \
    ENVIRONMENT=production
USER app
EXPOSE 8000
# Migrate, then serve. Several replicas may start at once: Alembic's version table serialises them
# on PostgreSQL only if run by one; in Kubernetes run migrations as a Job instead (deploy/).
CMD ["sh", "-c", "alembic -c \"$SERVICE_DIR/alembic.ini\" upgrade head && exec uvicorn \"$APP_MODULE\" --host 0.0.0.0 --port 8000 --proxy-headers"]
