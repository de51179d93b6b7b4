FROM python:3.11-slim
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY common common
COPY ingress ingress
COPY edge edge
COPY control control
COPY migrations migrations
RUN uv sync --locked --no-dev && ln -s /app/.venv/bin/kokoa /usr/local/bin/kokoa
ENTRYPOINT []
