# The example Node.js worker (examples/node) for docker/compose.yaml.
# Build from the repository root:  docker build -f docker/worker.Dockerfile -t hyperdial-worker .
FROM node:20-slim
WORKDIR /app/examples/node
COPY examples/node/package.json examples/node/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
# worker.js loads ../../protos at run time: the same layout as in the repository.
COPY protos /app/protos
COPY examples/node/worker.js ./
USER node
ENTRYPOINT ["node", "worker.js"]
