# One image for web, worker-cpu and worker-gpu. torch comes from PyPI's CUDA build, which also
# runs on the CPU, so the same image serves both worker kinds.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CRYOLABEL_VAR_DIR=/var/lib/cryolabel MEDIA_ROOT=/var/lib/cryolabel/media STATIC_ROOT=/srv/static
WORKDIR /srv/cryolabel

COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN DEBUG=0 SECRET_KEY=build-only python manage.py collectstatic --no-input -v 0 \
    && useradd --system --home /var/lib/cryolabel cryolabel \
    && mkdir -p /var/lib/cryolabel/media && chown -R cryolabel /var/lib/cryolabel
USER cryolabel

EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "eoplatform.asgi:application"]
