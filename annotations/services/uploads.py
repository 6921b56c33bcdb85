"""Uploaded files land in a folder of their own under MEDIA_ROOT/uploads, for an ingest job."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

from django.conf import settings

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# Products and imagettes; ice charts (GeoPackage, GeoJSON, a shapefile with its sidecars, or zipped); altimetry
# tracks (NetCDF: SARAL/AltiKa SGDR, CryoSat-2 L1B).
ACCEPTED = (".zip", ".tif", ".tiff", ".png", ".gpkg", ".geojson", ".json", ".shp", ".shx", ".dbf", ".prj", ".cpg",
            ".nc")


class UploadRefused(ValueError):
    pass


def store_uploads(files) -> Path:
    if not files:
        raise UploadRefused("no file uploaded (field 'files')")
    for upload in files:
        if not upload.name.lower().endswith(ACCEPTED):
            raise UploadRefused(f"{upload.name}: only {', '.join(ACCEPTED)} files are accepted")
    total = sum(upload.size for upload in files)
    if total > settings.CRYOLABEL_MAX_UPLOAD_MB * 1024**2:
        limit = settings.CRYOLABEL_MAX_UPLOAD_MB
        raise UploadRefused(f"upload of {total / 1024**2:.0f} MB is over the {limit} MB limit")
    folder = Path(settings.MEDIA_ROOT) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        for upload in files:
            name = SAFE_NAME.sub("_", Path(upload.name).name).lstrip(".") or "upload"
            if name.lower().endswith(".json"):  # the ingest walks the folder, where a .json (a sidecar) is skipped:
                name = name[:-5] + ".geojson"  # one uploaded on its own is a chart in GeoJSON
            with open(folder / name, "wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder
