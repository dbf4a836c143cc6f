import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

const require = createRequire(import.meta.url);

/**
 * The live dashboard and the voice page (`/voice`: talk to the assistant from the browser's microphone): their pages,
 * scripts and uPlot from node_modules (no build step). They carry no data (that
 * comes from the authenticated routes), so they are public, and they stay out of the OpenAPI document.
 */
export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const uplotDir = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  const assets: Record<string, { type: string; file: string }> = {
    '/': { type: 'text/html; charset=utf-8', file: path.join(here, '../dashboard/index.html') },
    '/dashboard.js': { type: 'text/javascript; charset=utf-8', file: path.join(here, '../dashboard/dashboard.js') },
    '/voice': { type: 'text/html; charset=utf-8', file: path.join(here, '../dashboard/voice.html') },
    '/voice.js': { type: 'text/javascript; charset=utf-8', file: path.join(here, '../dashboard/voice.js') },
    '/assets/uplot.iife.min.js': {
      type: 'text/javascript; charset=utf-8',
      file: path.join(uplotDir, 'uPlot.iife.min.js'),
    },
    '/assets/uplot.min.css': { type: 'text/css; charset=utf-8', file: path.join(uplotDir, 'uPlot.min.css') },
  };
  for (const [url, asset] of Object.entries(assets)) {
    const body = await readFile(asset.file, 'utf8');
    app.get(url, { config: { public: true, rateLimit: false }, schema: { hide: true } }, async (_req, reply) =>
      reply.type(asset.type).header('cache-control', 'no-cache').send(body),
    );
  }
};
