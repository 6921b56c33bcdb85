"""Validation of a STAC export against the bundled JSON schemas, offline (never a download)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.exports.common import BUNDLED_SCHEMAS, SCHEMA_DIR


def stac_offline_validator():
    """pystac's JSON-schema validator with the schemas it would fetch by URL read from training/export_schemas
    (the core STAC schemas come with pystac): validation never touches the network, and a schema that is not
    bundled is an error rather than a download."""
    from pystac.validation import GetSchemaError, JsonSchemaSTACValidator

    class OfflineSTACValidator(JsonSchemaSTACValidator):
        def __init__(self) -> None:
            super().__init__()
            for uri, name in BUNDLED_SCHEMAS.items():
                self.schema_cache[uri] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))

        def _get_schema(self, schema_uri: str) -> dict[str, Any]:
            if schema_uri not in self.schema_cache:
                raise GetSchemaError(schema_uri, LookupError("not bundled in training/export_schemas; "
                                                             "validation runs offline"))
            return self.schema_cache[schema_uri]

    return OfflineSTACValidator()


def stac_validate_export(root: str | Path) -> int:
    """Validate collection.json and every Item it links, one at a time, against the bundled schemas (core
    and label extension). Returns how many objects were validated; raises pystac's STACValidationError."""
    import pystac
    from pystac.validation import validate_dict

    validator = stac_offline_validator()
    root = Path(root)
    collection_path = root / "collection.json"
    collection = json.loads(collection_path.read_text(encoding="utf-8"))
    validate_dict(collection, pystac.STACObjectType.COLLECTION, href=str(collection_path), validator=validator)
    count = 1
    for link in collection["links"]:
        if link["rel"] != "item":
            continue
        item_path = (collection_path.parent / link["href"]).resolve()
        item = json.loads(item_path.read_text(encoding="utf-8"))
        validate_dict(item, pystac.STACObjectType.ITEM, href=str(item_path), validator=validator)
        count += 1
    return count
