# syntax=docker/dockerfile:1
# Every Smith service's image: one service (SERVICE: planner, status, executor-core,
# executor-servicecatalog, executor-dynamic, plugin-app, controller) and only the libraries it uses.
# Build from the repository root:
#   docker build --build-arg SERVICE=planner -t smith/planner .
ARG SERVICE

FROM python:3.11-slim AS build
ARG SERVICE
RUN test -n "$SERVICE" || { echo "build with --build-arg SERVICE=<service>" >&2; exit 1; }
RUN pip install --no-cache-dir "uv>=0.13,<0.14"
WORKDIR /src
ENV UV_PROJECT_ENVIRONMENT=/app/venv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
COPY pyproject.toml uv.lock ./
COPY libs libs
COPY services services
RUN uv sync --frozen --no-dev --no-editable --package smith-${SERVICE}
RUN ln -s "smith-${SERVICE}" /app/venv/bin/smith-service

FROM python:3.11-slim
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin smith
COPY --from=build /app/venv /app/venv
ENV PATH=/app/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
CMD ["smith-service"]
