# One image for the API and the worker (the command picks which).
#   CPU:  docker build -t robust-fewshot:cpu .
#   CUDA: docker build --build-arg TORCH_VARIANT=cu128 -t robust-fewshot:cuda .
# TORCH_VARIANT names a wheel index of download.pytorch.org/whl/ (cpu, cu126, cu128, ...);
# TORCH_INDEX_URL replaces that index (a mirror). torch stays pinned at 2.13.0 whatever the variant.
# Offline (no index reachable): `make wheelhouse` on the host fills wheelhouse/, which the build
# then installs from with --no-index; requirements.lock (`make lock`) pins every dependency.
# No registry: scripts/airgap_base_images.sh builds stand-ins for the base images.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
# the lock, and the wheelhouse when there is one (the glob matches nothing otherwise)
COPY requirements.lock wheelhouse* /src/wheelhouse/
# pip-install: pinned by the lock; offline from wheelhouse/<variant>/ when that holds wheels
# (`make wheelhouse` fills wheelhouse/cpu/: a CUDA build never takes the CPU wheels)
RUN printf '%s\n' '#!/bin/sh' \
        "if ls /src/wheelhouse/${TORCH_VARIANT}/*.whl >/dev/null 2>&1; then" \
        "  set -- --no-index --find-links /src/wheelhouse/${TORCH_VARIANT} \"\$@\"; fi" \
        'exec pip install --no-cache-dir -c /src/wheelhouse/requirements.lock "$@"' \
        > /usr/local/bin/pip-install \
    && chmod +x /usr/local/bin/pip-install \
    && python -m venv /opt/venv \
    && pip-install --no-deps \
        --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/${TORCH_VARIANT}}" \
        "torch==2.13.0" \
    && pip-install "torch==2.13.0"
# (torch alone from its index, then its dependencies, pinned, from PyPI or the wheelhouse)
# the client first: its own distribution (robust-fewshot-client), which the server depends on
COPY client ./client
RUN pip-install "./client[cli]"
COPY pyproject.toml README.md ./
COPY models ./models
COPY common ./common
COPY app ./app
COPY worker ./worker
COPY cli ./cli
# torch==2.13.0 is already satisfied by the variant above: pip keeps it
RUN pip-install . \
    && python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
    && if [ "${TORCH_VARIANT}" != cpu ]; then \
        python -c "import torch, sys; sys.exit(torch.version.cuda is None)"; fi

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="robust-fewshot" \
      org.opencontainers.image.description="Robust few-shot image classification: API and worker"
RUN groupadd --gid 10001 fewshot \
    && useradd --no-log-init --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin fewshot \
    && mkdir /artifacts && chown 10001:10001 /artifacts  # a new volume here takes its owner
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FEWSHOT_HOST=0.0.0.0 \
    FEWSHOT_WORKER_ALIVE_FILE=/tmp/fewshot-worker.alive
USER 10001:10001
WORKDIR /home/fewshot
# the API listens on 8000 (docker-compose.yml publishes it); the worker listens on nothing,
# so the image exposes no port
# the API; the worker runs the same image with: python -m worker
CMD ["python", "-m", "app"]
