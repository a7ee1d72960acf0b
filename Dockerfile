# The Leasehold operator image, as manifests/operator/deployment.yaml runs it:
#   docker build -t ghcr.io/leasehold/leasehold:0.1.0 .
# tests/unit/dockerfile.test.ts checks that what this file copies and runs exists after a build, and that it
# agrees with the Deployment (entry point, ports, user).

# ---- build: every dependency (TypeScript), compile api/, cmd/, controllers/ and lib/ to dist/ ----------------
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY api ./api
COPY cmd ./cmd
COPY controllers ./controllers
COPY lib ./lib
RUN npm run build

# ---- runtime: production dependencies and the compiled JavaScript, run as a non-root user ---------------------
FROM node:24-slim
LABEL org.opencontainers.image.title="leasehold" \
      org.opencontainers.image.description="Kubernetes operator issuing short-lived PostgreSQL credentials through Vault/OpenBao after a person approves" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
# No production dependency has an install script; the `node` dev dependency (Node.js for local runs) is left out.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# The Deployment's securityContext runs as 65532 too (the "nonroot" uid of distroless images).
USER 65532:65532
# 8080: /metrics (--metrics-bind-address); 8081: /healthz and /readyz (--health-probe-bind-address).
EXPOSE 8080 8081
ENTRYPOINT ["node", "dist/cmd/operator/main.js"]
