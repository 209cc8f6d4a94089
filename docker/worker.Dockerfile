# The example Node.js worker (examples/node) for docker/compose.yaml.
# Build from the repository root:  docker build -f docker/worker.Dockerfile -t hyperdial-worker .
# Node.js 24 (LTS), pinned to a full version; docker/README.md says how to pin its digest too.
FROM node:24.14.0-trixie-slim
WORKDIR /app/examples/node
COPY examples/node/package.json examples/node/package-lock.json ./
# Exactly the lock file's packages; npm's cache is dropped so the layer holds only node_modules.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# hyperdial.js loads ../../protos at run time (the same layout as in the repository) and the
# google.rpc protos it vendors from ./protos.
COPY protos /app/protos
COPY examples/node/protos ./protos
COPY examples/node/worker.js examples/node/hyperdial.js ./
# A fixed numeric uid and gid of its own, not the image's uid 1000 "node"; /app stays owned by
# root, so the worker can read its code and change none of it.
RUN groupadd --system --gid 10001 worker \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin worker
USER 10001:10001
ENTRYPOINT ["node", "worker.js"]
