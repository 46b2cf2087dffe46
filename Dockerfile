# One image for every service of compose.yaml: the web process and every kind of worker.
# TORCH_INDEX picks the torch build: the default (PyPI) is the CUDA one for GPU hosts;
# --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu makes a much smaller CPU image.
FROM python:3.11-slim
ARG TORCH_INDEX=""
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY . .
RUN pip install ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} -e '.[ml]'
RUN useradd --create-home prefhub && mkdir -p /srv/media var && chown prefhub /srv/media var
USER prefhub
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "-b", "0.0.0.0:8000", "-w", "4", "--timeout", "150"]
