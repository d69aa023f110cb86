#!/usr/bin/env bash
# Installs the dashboards' chart library (uPlot, pinned in
# dashboards/web/package-lock.json) with npm and copies its dist files into
# dashboards/assets/vendor, which is embedded in the binary and committed:
# `go build` needs neither npm nor the network. Run it after changing the
# version in dashboards/web/package.json, then commit the vendor files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
web="$root/dashboards/web"
vendor="$root/dashboards/assets/vendor"
cd "$web"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
mkdir -p "$vendor"
dist="$web/node_modules/uplot/dist"
version=$(node -p "require('$web/node_modules/uplot/package.json').version")
cp "$dist/uPlot.iife.min.js" "$vendor/uplot.iife.min.js"
cp "$dist/uPlot.min.css" "$vendor/uplot.min.css"
cp "$web/node_modules/uplot/LICENSE" "$vendor/uplot.LICENSE"
echo "$version" > "$vendor/uplot.VERSION"
echo "dashboards: uPlot $version copied to ${vendor#"$root"/}"
