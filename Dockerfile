# gitfs-csi: the CSI driver (node plugin and controller) in one image.
# The base images are arguments: deploy/image/build.sh builds local ones (debootstrap + the host's
# Node.js) on machines that cannot pull, and passes them here.
ARG BUILD_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=node:20-bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
# No dependency needs an install script.
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
# The native addon (native/fuseDevice.c) needs a C compiler: only this stage gets one.
RUN command -v cc >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*; }
COPY tsconfig.json ./
COPY proto ./proto
COPY native ./native
COPY src ./src
RUN npx tsc -p tsconfig.json \
 && native/build.sh \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

FROM ${RUNTIME_IMAGE}
# git, FUSE, tini and what writable layers need (mkfs.ext4, fallocate, loop mounts) from Debian when
# the base lacks them; then no package manager caches and no npm.
RUN if ! command -v git >/dev/null || ! command -v tini >/dev/null || ! command -v fusermount3 >/dev/null || ! command -v mkfs.ext4 >/dev/null || ! command -v fallocate >/dev/null; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git fuse3 tini ca-certificates openssh-client e2fsprogs util-linux mount \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /root/.npm /tmp/*
WORKDIR /opt/gitfs-csi
COPY --from=build /build/package.json ./
COPY --from=build /build/proto ./proto
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist/src ./dist/src
COPY --from=build /build/dist/native ./dist/native
# `kubectl exec … -- gitfs-csi status` on a node.
RUN printf '#!/bin/sh\nexec node /opt/gitfs-csi/dist/src/cli/main.js "$@"\n' > /usr/local/bin/gitfs-csi && chmod 0755 /usr/local/bin/gitfs-csi
# A young generation of 2 MiB semi-spaces, not V8's 16: the node plugin's RSS stays flat over
# weeks of publishes (docs/benchmarks.md, the soak; bench/soak.ts passes the same).
ENTRYPOINT ["tini", "--", "node", "--max-semi-space-size=2", "/opt/gitfs-csi/dist/src/cli/main.js"]
CMD ["--help"]
