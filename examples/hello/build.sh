#!/usr/bin/env bash
# Rebuilds app.tar.gz from app/ reproducibly and writes its sha256 into manifest.yml.
set -euo pipefail
cd "$(dirname "$0")"
tar --sort=name --mtime='2026-01-01 00:00:00 UTC' --owner=0 --group=0 --numeric-owner \
  -C app -cf - . | gzip -n -9 > app.tar.gz
sum=$(sha256sum app.tar.gz | cut -d' ' -f1)
sed -i -E "s/^checksum: .*/checksum: sha256:${sum}/" manifest.yml
echo "app.tar.gz sha256 ${sum}"
