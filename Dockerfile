# syntax=docker/dockerfile:1
#
# workload-token-broker container image.
#
#   docker build -t workload-token-broker:0.1.0 .
#
# Two stages: `build` installs every dependency (TypeScript is a dev dependency) and compiles src/ to dist/;
# the runtime stage holds production dependencies and dist/ only, owned by root and run as an unprivileged
# numeric user, so the process can neither change its own code nor needs to write anywhere: it runs with a
# read-only root filesystem (configuration, keys and the service-account token are mounted read-only).
#
# The image defaults to NODE_ENV=production, which refuses dev mode: `serve` needs --config FILE or
# BROKER_CONFIG. docker-compose.yml opts into dev mode explicitly for the local demo.

# Both stages use the same pinned base: Debian bookworm slim with a Node.js LTS release (Node 20 reached end of
# life on 2026-04-30). .ci/run runs the test suite on this exact version as well as on the machine's Node
# (scripts/lts-node.sh installs it from the npm registry); test/deploy/dockerfile.test.ts keeps both stages equal.
FROM node:24.22.3-bookworm-slim AS build
WORKDIR /app
# Dependencies first, so editing src/ does not invalidate the npm ci layer. --ignore-scripts: `prepare`
# would build before src/ is here; no dependency tsc needs has an install script.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# main.js carries a `#!/usr/bin/env node` line; executable, it is also the `token-broker` command.
RUN npm run build && chmod 0755 dist/main.js

FROM node:24.22.3-bookworm-slim AS runtime
ENV NODE_ENV=production
# A smaller young generation: after a burst of misses V8 keeps less heap (bench/README.md, "Issue 18"), and the
# bench measured no CPU cost per request. The Kubernetes Deployment sets the same flag beside its heap bound.
ENV NODE_OPTIONS=--max-semi-space-size=8
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force \
  && ln -s /app/dist/main.js /usr/local/bin/token-broker
COPY --from=build /app/dist ./dist
# Numeric, so Kubernetes can verify runAsNonRoot without resolving a name. No home directory is needed.
USER 10001:10001
EXPOSE 8080
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz, and compose defines its own check.
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["serve"]
