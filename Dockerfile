# One image for the API and the workers: `tunelab serve` or `tunelab worker`.
# GPU workers need no CUDA base image: PyTorch wheels bring their CUDA libraries, and the
# NVIDIA container toolkit mounts the driver when compose reserves GPUs for the service.
FROM node:20-slim AS dashboard
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TUNELAB_DATA_DIR=/data \
    TUNELAB_CHECKPOINT_ROOT=/data/checkpoints
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app/ app/
COPY worker/ worker/
COPY tunelab/ tunelab/
COPY migrations/ migrations/
COPY examples/ examples/
RUN pip install . \
    && useradd --create-home --uid 1000 tunelab \
    && mkdir -p /data/checkpoints && chown -R tunelab /data
COPY --from=dashboard /src/frontend/dist frontend/dist
USER tunelab
EXPOSE 8000
CMD ["tunelab", "serve", "--host", "0.0.0.0", "--port", "8000"]
