#!/usr/bin/env bash
# Front-end packages pinned in package.json + package-lock.json, installed with `npm ci` and copied
# into frontend/static/vendor/ (git-ignored): the browser loads them from our own static files, never
# from a CDN. Run by `make install` (and so by `make demo` and `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=frontend/static/vendor

if ! command -v npm >/dev/null; then
  echo "vendor: npm is needed to install the front-end packages (Node 20 or later)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

# Copied into a temporary folder first, then swapped in whole: never a half-copied vendor folder.
tmp=$(mktemp -d "frontend/static/.vendor.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
copy() {  # copy PACKAGE FILE... : node_modules/PACKAGE/FILE -> vendor/PACKAGE/FILE
  local package=$1; shift
  mkdir -p "$tmp/$package"
  for file in "$@"; do cp "node_modules/$package/$file" "$tmp/$package/"; done
}
# Natural Earth land (1:50m and 1:110m) as TopoJSON, and the client that turns it into GeoJSON.
copy world-atlas land-50m.json land-110m.json LICENSE
copy topojson-client dist/topojson-client.min.js LICENSE
# The polar map: proj4 + Proj4Leaflet give Leaflet the polar stereographic grids, Leaflet-Geoman draws and edits.
copy proj4 dist/proj4.js LICENSE.md
copy proj4leaflet src/proj4leaflet.js LICENSE
copy @geoman-io/leaflet-geoman-free dist/leaflet-geoman.min.js dist/leaflet-geoman.css LICENSE
# The track page's waveform viewer: uPlot draws the echo power and the peakiness curve.
copy uplot dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE

chmod -R a+rX "$tmp"
rm -rf "$DEST.old"
[[ -d $DEST ]] && mv "$DEST" "$DEST.old"
mv "$tmp" "$DEST"
rm -rf "$DEST.old"
touch "$DEST/.installed"
echo "vendor: front-end packages copied into $DEST"
