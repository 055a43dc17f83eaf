# stretcher in a container: Node 20 plus rsync. Mount the directories it deploys into.
#   docker build -t stretcher .
#   echo s3://example-bucket/app/manifest.yml | docker run -i --rm -v /srv:/srv -e AWS_REGION stretcher
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json npm-shrinkwrap.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY schemas ./schemas
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends rsync ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/stretcher
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/schemas ./schemas
RUN ln -s /opt/stretcher/dist/cli.js /usr/local/bin/stretcher
ENTRYPOINT ["stretcher"]
