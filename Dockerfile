# One image for web, worker-cpu and worker-gpu. torch comes from PyPI's CUDA build, which also
# runs on the CPU, so the same image serves both worker kinds.

# --- stage 1: the front-end packages --------------------------------------------------------------------------
# package.json + package-lock.json installed with `npm ci` and copied into frontend/static/vendor/ by
# scripts/vendor.sh, as `make install` does (the maps' Natural Earth coastlines, topojson-client). Node is needed
# here only: the final image carries the copied files, not Node or node_modules.
FROM node:20-bookworm-slim AS vendor
WORKDIR /build
COPY package.json package-lock.json ./
COPY scripts/vendor.sh scripts/vendor.sh
RUN mkdir -p frontend/static && bash scripts/vendor.sh && test -f frontend/static/vendor/.installed

# --- stage 2: the platform ------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CRYOLABEL_VAR_DIR=/var/lib/cryolabel MEDIA_ROOT=/var/lib/cryolabel/media STATIC_ROOT=/srv/static
WORKDIR /srv/cryolabel

COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# The vendor folder from stage 1 (.dockerignore keeps a local one out), before collectstatic gathers it.
COPY --from=vendor /build/frontend/static/vendor frontend/static/vendor
RUN DEBUG=0 SECRET_KEY=build-only python manage.py collectstatic --no-input -v 0 \
    && test -f /srv/static/vendor/world-atlas/land-50m.json \
    && useradd --system --home /var/lib/cryolabel cryolabel \
    && mkdir -p /var/lib/cryolabel/media && chown -R cryolabel /var/lib/cryolabel
USER cryolabel

EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "eoplatform.asgi:application"]
