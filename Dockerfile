# Worker and API image: the compiled code and production dependencies only. The CPU ONNX Runtime ships inside
# onnxruntime-node; for CUDA see docs/gpu.md. Models are mounted at /app/models (docker-compose.yml) or /models (Kubernetes).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs scripts/
COPY src src
COPY workers workers
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# espeak-ng speaks replies and ffmpeg encodes them as Ogg/Opus (GET /v1/messages/:id/audio); ffmpeg decodes voice
# messages and libpocketsphinx with its US English model hears them.
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng ffmpeg libpocketsphinx3 pocketsphinx-en-us && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist dist
COPY bin bin
COPY config config
COPY kb kb
ENV AVA_REDIS_URL=redis://redis:6379 AVA_MONGO_URL=mongodb://mongo:27017
CMD ["node", "dist/workers/message-worker.js"]
