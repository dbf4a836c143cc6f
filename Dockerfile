# Worker and CLI image. The CPU ONNX Runtime ships inside onnxruntime-node; for CUDA see docs/gpu.md.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY . .
ENV AVA_REDIS_URL=redis://redis:6379 AVA_MONGO_URL=mongodb://mongo:27017
CMD ["node", "--import", "tsx", "workers/message-worker.ts"]
