# One image for every service of docker-compose.yml: api, worker, migrate.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HPSEARCH_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY worker ./worker
COPY search_spaces ./search_spaces
COPY db ./db
RUN pip install . && useradd --create-home hpsearch && mkdir -p /data && chown hpsearch /data
USER hpsearch
EXPOSE 8000
CMD ["hpsearch", "serve", "--host", "0.0.0.0", "--port", "8000"]
