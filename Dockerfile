# realip-webhook container image. The build args name the build in its OCI labels; the release
# (build/release.ts) and the image test set them from package.json and git (build/build-info.ts):
#   docker build --build-arg VERSION=$(node -p "require('./package.json').version") \
#     --build-arg REVISION=$(git rev-parse HEAD) --build-arg SOURCE=URL \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t realip-webhook:VERSION .
# The Node version is pinned to an exact release of the current LTS line (not `node:24`), so a
# rebuild of the same commit gets the same runtime; bump it deliberately (and pin a digest in
# your registry mirror if you need byte-for-byte reproducible builds). Both stages use the same image so
# native modules, if any are ever added, are built against the runtime's Node and glibc.
# Keep it equal to NODE_VERSION in .ci/install-node.sh: CI tests the release the image ships.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim
ARG VERSION
ARG REVISION=unknown
ARG SOURCE=unknown
ARG CREATED

# ---- build: compile TypeScript and bundle, then gather what the runtime needs ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Lockfile first so the dependency layer is cached until package*.json change.
COPY package.json package-lock.json ./
# npm ci: exact versions from package-lock.json, fails if it is out of date.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY build ./build
COPY src ./src
# dist/cli.js is an esbuild bundle of the application and its packages (build/bundle.ts).
# build/runtime.ts reads the bundle's metafile and writes /runtime: node_modules with only the
# packages the bundle leaves external, and an SBOM of every package in the image.
# Declared here, not above npm ci, so a new commit does not rebuild the dependency layer.
# The context has no .git: the bundle takes its commit from REVISION. VERSION labels the image,
# so it must be given and be package.json's: otherwise the label and `--version` would disagree.
ARG VERSION
ARG REVISION
RUN pkg_version=$(node -p "require('./package.json').version") \
 && if [ "$VERSION" != "$pkg_version" ]; then \
      echo "build arg VERSION is '$VERSION'; it must be package.json's version: --build-arg VERSION=$pkg_version" >&2; exit 1; fi \
 && REALIP_REVISION="$REVISION" npm run build \
 && node build/runtime.ts dist/cli.meta.json /runtime

# ---- runtime: only what `node dist/cli.js serve` needs ----
FROM ${NODE_IMAGE}
ARG VERSION
ARG REVISION
ARG SOURCE
ARG CREATED
LABEL org.opencontainers.image.title="realip-webhook" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
ENV NODE_ENV=production
# Files stay owned by root and are only read by uid 1000: the process cannot modify its own code.
# package.json: "type": "module" makes dist/cli.js an ES module.
COPY --from=build /app/package.json ./package.json
COPY --from=build /runtime/node_modules ./node_modules
# No source map: node runs without --enable-source-maps here, and the bundle is not minified, so
# a stack trace still names the functions (and dist/cli.js marks each module's source path).
COPY --from=build /app/dist/cli.js ./dist/cli.js
# CycloneDX, from npm sbom: the packages in dist/cli.js and node_modules, with versions and hashes.
COPY --from=build /runtime/sbom.cdx.json ./sbom.cdx.json
# uid 1000 is the `node` user of the official image. Numeric, so the kubelet can verify
# runAsNonRoot; manifests/base/deployment.yaml sets the same runAsUser/runAsGroup.
USER 1000:1000
# 8443: HTTPS (/mutate, /healthz, /readyz). 9090: plain-HTTP Prometheus /metrics.
EXPOSE 8443 9090
# Nothing is written to disk (logs go to stdout, certificates are read from the mounted
# Secret), so the container runs with readOnlyRootFilesystem: true and no writable volume.
# Exec form: node is PID 1 and receives SIGTERM directly (no shell in between), and the
# webhook handles it by draining in-flight requests. The official image's
# docker-entrypoint.sh is bypassed on purpose. Flags follow: `docker run IMAGE --port 8443 ...`.
# --max-semi-space-size=2 (MB): V8's young generation stays small, which keeps serve at about
# 119 MB RSS with 10,000 namespaces cached instead of 131 MB (npm run bench, Node 24), for a few
# per cent of peak throughput that no cluster's admission rate comes near. `npm run bench` reads
# the flags from this line, so its figures are the image's.
ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/cli.js", "serve"]
