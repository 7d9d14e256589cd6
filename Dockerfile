# The Kindred image used by compose.yaml: the locked dependencies, the app, and `kindred` as the entry point.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir uv
WORKDIR /srv/kindred
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-default-groups --no-install-project
COPY app ./app
COPY realtime ./realtime
COPY db ./db
COPY web ./web
RUN uv sync --frozen --no-default-groups
ENV PATH="/srv/kindred/.venv/bin:$PATH"
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
CMD ["kindred", "serve", "--host", "0.0.0.0", "--port", "8000"]
