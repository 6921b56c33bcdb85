"""Export formats: a curated snapshot written as an ImageFolder tree, a CSV manifest with GeoTIFFs, or a STAC
Collection with the label extension, each with its dataset card, its manifest and the crowd's votes.

`common` (names, rows, counters), `writer` (the one pass every format shares), `formats` (ImageFolder, CSV, STAC:
the writers by format, WRITERS), `geotiff` (each item's pixels), `card` (the dataset card for people),
`download` (the zip streamed on the fly), `stac_validate` (offline schema validation). The service that checks,
picks the snapshot, writes all or nothing and records the Export is training.services.export.
"""
