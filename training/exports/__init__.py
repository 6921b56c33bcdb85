"""Export formats: a curated snapshot written in one of its kind's formats, each with its dataset card and manifest.

Imagettes (an ImageFolder tree, a CSV manifest with GeoTIFFs, or a STAC Collection with the label extension, with
the crowd's votes): `common` (names, rows, counters), `writer` (the one pass every format shares), `formats` (the
writers by format, WRITERS), `geotiff` (each item's pixels), `card` (the dataset card for people). Scenes (GeoTIFF
chips with SIC and class rasters, GeoJSON per scene, or a STAC Collection): `scenes` (their pass, frozen polygons,
counters and card), `scene_formats` (SCENE_WRITERS). Shared: `download` (the zip streamed on the fly),
`stac_validate` (offline schema validation). The service that checks, picks the snapshot, writes all or nothing
and records the Export is training.services.export; each kind's writers are its "export_writers" part in the
kinds registry (training/apps.py).
"""
