import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/config.js';
import { ROOT } from '../helpers/paths.js';

const DIR = path.join(ROOT, 'deploy/kubernetes');
const VALIDATE = path.join(
  process.env.AVA_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'ava'),
  'venv',
  'bin',
  'kubernetes-validate',
);

type Manifest = {
  kind: string;
  metadata: { name: string };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kubernetes specs of many kinds, read field by field
  spec?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
};
let manifests: Array<Manifest & { file: string }>;
beforeAll(async () => {
  manifests = [];
  for (const file of (await readdir(DIR)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')) {
    for (const doc of parseAllDocuments(await readFile(path.join(DIR, file), 'utf8')))
      manifests.push({ ...(doc.toJS() as Manifest), file });
  }
});
const find = (kind: string, name: string) => manifests.find((m) => m.kind === kind && m.metadata.name === name)!;
const container = (name: string) => find('Deployment', name).spec.template.spec.containers[0];

describe('Kubernetes manifests in deploy/kubernetes', () => {
  it("validate against Kubernetes 1.30 schemas (strict) and KEDA's, and kustomize lists every one", async () => {
    const core = [
      ...new Set(
        manifests.filter((m) => !m.kind.startsWith('Scaled') && m.kind !== 'TriggerAuthentication').map((m) => m.file),
      ),
    ];
    const out = execFileSync(VALIDATE, ['--strict', '-k', '1.30.0', ...core.map((f) => path.join(DIR, f))], {
      encoding: 'utf8',
    });
    expect(out.match(/passed for resource/g)).toHaveLength(
      manifests.filter((m) => !m.kind.startsWith('Scaled') && m.kind !== 'TriggerAuthentication').length,
    );
    // A broken manifest is refused: the validator is really checking.
    expect(() =>
      execFileSync(VALIDATE, ['--strict', '-k', '1.30.0', '-'], {
        input: 'apiVersion: v1\nkind: Service\nmetadata: { name: x }\nspec: { ports: [{ port: "eighty" }] }\n',
        encoding: 'utf8',
        stdio: 'pipe',
      }),
    ).toThrow();
    for (const m of manifests.filter((x) => x.kind === 'ScaledObject')) new ScaledObject(m as never).validate();
    for (const m of manifests.filter((x) => x.kind === 'TriggerAuthentication'))
      new TriggerAuthentication(m as never).validate();
    const kustomization = (
      parseAllDocuments(await readFile(path.join(DIR, 'kustomization.yaml'), 'utf8'))[0].toJS() as {
        resources: string[];
      }
    ).resources;
    expect(kustomization.sort()).toEqual(
      [...new Set(manifests.map((m) => m.file))].filter((f) => f !== 'secret.example.yaml').sort(),
    );
  });

  it('configure AVA with settings it accepts, and agree with each other', () => {
    const config = find('ConfigMap', 'ava-config').data!;
    const secret = find('Secret', 'ava-secrets').stringData!;
    // Every AVA_* setting in the manifests is one AVA reads and accepts.
    const avaSettings = Object.fromEntries(
      Object.entries({ ...config, ...secret }).filter(([k]) => k.startsWith('AVA_')),
    );
    const loaded = loadConfig({}, avaSettings as never);
    for (const c of [container('ava-worker-cpu'), container('ava-worker-gpu'), container('ava-api')]) {
      for (const e of c.env as Array<{ name: string; value?: string }>)
        if (e.value !== undefined && e.name.startsWith('AVA_'))
          loadConfig({}, { ...avaSettings, [e.name]: e.value } as never);
    }
    // KEDA reads the queue depth from the API's Service with a token of the admin scope.
    const api = find('Service', 'ava-api');
    const keda = loaded.api.tokens.find((t) => t.token === secret.KEDA_API_TOKEN);
    expect(keda?.scopes).toContain('admin');
    for (const so of manifests.filter((m) => m.kind === 'ScaledObject')) {
      const { url, valueLocation } = so.spec.triggers[0].metadata;
      expect(url).toBe(`http://ava-api.ava.svc:${api.spec.ports[0].port}/v1/stats`);
      expect(valueLocation).toBe('queue.waiting');
      expect(so.spec.triggers[0].authenticationRef.name).toBe('ava-api-stats');
    }
    // The workers' liveness probe reads the file their heartbeat touches; the API's probes are its health routes.
    for (const name of ['ava-worker-cpu', 'ava-worker-gpu']) {
      expect(container(name).livenessProbe.exec.command.join(' ')).toContain(loaded.worker.heartbeatFile);
      expect(find('Deployment', name).spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
      expect(container(name).volumeMounts).toContainEqual({
        name: 'models',
        mountPath: loaded.model.dir,
        readOnly: true,
      });
    }
    expect(container('ava-api').livenessProbe.httpGet.path).toBe('/healthz');
    expect(container('ava-api').readinessProbe.httpGet.path).toBe('/readyz');
    // GPU workers: one GPU each, on GPU nodes, on CUDA.
    const gpu = find('Deployment', 'ava-worker-gpu').spec.template.spec;
    expect(gpu.containers[0].resources.limits['nvidia.com/gpu']).toBe(1);
    expect(gpu.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(gpu.containers[0].env).toContainEqual({ name: 'AVA_EXECUTION_PROVIDER', value: 'cuda' });
  });
});
