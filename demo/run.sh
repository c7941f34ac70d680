#!/usr/bin/env bash
# The gitfs-csi demo: serve a sample repository over smart HTTP on loopback (git http-backend),
# mount it with `gitfs-csi mount`, list it, read files, show what was fetched, unmount.
# Needs root (FUSE, bind mounts) and nothing from outside this machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source test/prerequisites.sh

work=$(mktemp -d /tmp/gitfs-demo.XXXXXX)
server_pid= mount_pid=
cleanup() {
  [ -n "$mount_pid" ] && kill -TERM "$mount_pid" 2>/dev/null && wait "$mount_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "building a sample repository (this project's sources + the pino and simple-git packages)"
sample="$work/src"
mkdir -p "$sample"
cp -r src test package.json README.md "$sample"/
cp -r node_modules/pino node_modules/simple-git "$sample"/
git -C "$sample" init -q -b main
git -C "$sample" add -A
git -C "$sample" -c user.name=demo -c user.email=demo@localhost commit -q -m "gitfs-csi demo sample"
git clone -q --bare "$sample" "$work/served/sample.git"
for kv in uploadpack.allowFilter=true uploadpack.allowAnySHA1InWant=true transfer.advertiseObjectInfo=true; do
  git -C "$work/served/sample.git" config "${kv%%=*}" "${kv#*=}"
done
echo "$(git -C "$sample" ls-files | wc -l) files, $(du -sh --exclude=.git "$sample" | cut -f1)"

step "serving it with git http-backend on loopback"
node dist/demo/serveRepositories.js "$work/served" > "$work/server.url" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/server.url" ] && break; sleep 0.1; done
url="$(cat "$work/server.url")/sample.git"
echo "$url"

step "gitfs-csi mount $url $work/mnt"
started=$(date +%s%N)
mkdir -p "$work/mnt"
node dist/src/cli/main.js mount "$url" "$work/mnt" --cache-dir "$work/cache" --log-level warn > "$work/mount.out" 2> "$work/mount.err" &
mount_pid=$!
for _ in $(seq 300); do grep -q '^ready ' "$work/mount.out" 2>/dev/null && break; sleep 0.05; done
grep -q '^ready ' "$work/mount.out" || { cat "$work/mount.err"; exit 1; }
echo "ready in $(( ($(date +%s%N) - started) / 1000000 )) ms: $(cat "$work/mount.out")"

step "listing the tree (no file contents are fetched for this)"
ls -la "$work/mnt"
echo "$(find "$work/mnt" | wc -l) entries; blobs in the cache: $(find "$work/cache/blobs/blobs" -type f | wc -l)"

step "reading files (each cold read fetches its blob, batched with its neighbours)"
head -n 5 "$work/mnt/README.md"
echo "…"
grep -m1 '"version"' "$work/mnt/pino/package.json"
echo "src/cli/main.ts: $(wc -l < "$work/mnt/src/cli/main.ts") lines"
echo "blobs in the cache now: $(find "$work/cache/blobs/blobs" -type f | wc -l)"

step "identical to git archive?"
mkdir -p "$work/archive"
git -C "$work/served/sample.git" -c tar.umask=022 archive HEAD | tar -x -C "$work/archive"
diff -r --no-dereference "$work/archive" "$work/mnt" && echo "yes: every file and mode matches"

step "unmounting (SIGTERM)"
kill -TERM "$mount_pid"
wait "$mount_pid"
mount_pid=
tail -n 1 "$work/mount.err"
grep -q " $work/mnt " /proc/self/mounts && { echo "still mounted!"; exit 1; }
echo "unmounted cleanly; cache: $(du -sh "$work/cache/blobs" | cut -f1) in $(find "$work/cache/blobs/blobs" -type f | wc -l) blobs"
