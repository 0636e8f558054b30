# Tenantry as a container image: one image for the instances (`tenantry serve`) and the worker
# (`tenantry worker`); deploy/compose.yaml shows the whole cluster.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && useradd --system --home /app tenantry && mkdir -p /app/var && chown tenantry /app/var
USER tenantry

EXPOSE 8000
# /readyz: 200 once the database answers and its schema is at this version's head, else 503.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"
CMD ["tenantry", "serve", "--host", "0.0.0.0", "--port", "8000"]
