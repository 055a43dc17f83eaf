#!/bin/sh
# Mounts a fresh ext4 with a journal, for BENCH_DIR: the filesystem most servers deploy onto, and one that
# no earlier run has filled with recently deleted inodes (bench/RESULTS.md, "This machine's disk").
#   sudo bench/fresh-ext4.sh /mnt/stretcher-bench && BENCH_DIR=/mnt/stretcher-bench npm run bench
# The image lives in bench/fixtures (ignored by git); `umount DIR` and delete it when done.
set -eu
dir=${1:?usage: fresh-ext4.sh MOUNT_DIR [SIZE]}
size=${2:-16G}
image=$(dirname "$0")/fixtures/ext4.img
mkdir -p "$(dirname "$image")" "$dir"
if mountpoint -q "$dir"; then umount "$dir"; fi
rm -f "$image"
truncate -s "$size" "$image"
mkfs.ext4 -q -F "$image"
mount -o loop "$image" "$dir"
echo "mounted a fresh ext4 ($size, with a journal) at $dir"
