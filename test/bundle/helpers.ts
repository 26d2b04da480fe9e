import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deepMerge, REPO_ROOT, startSatellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { GC_ENTRY } from '../helpers/groundcontrol.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { hostPlatform, makeLayer, writeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { makeCosignKey, pushCosignSignature } from '../helpers/cosign-sign.ts';
import { syncConfig, waitForGeneration, writeDesired } from '../sync/helpers.ts';

const run = promisify(execFile);
export const SATELLITE_ENTRY = join(REPO_ROOT, 'src', 'cli', 'satellite.ts');

/** `satellite --config CFG bundle ...`: exit code, stdout, stderr. */
export function satelliteCli(configFile: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return satelliteRun(configFile, ['bundle', ...args]);
}

/** `satellite --config CFG ...`: exit code, stdout, stderr. */
export function satelliteRun(configFile: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(SATELLITE_ENTRY, configFile, args);
}

async function runCli(entry: string, configFile: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  try {
    const { stdout, stderr } = await run(process.execPath, [entry, '--config', configFile, ...args], { cwd: REPO_ROOT, env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A satellite config with no upstream and no control: only a data dir (and `extra`). */
export async function offlineConfig(t: Parameters<typeof makeTempDir>[0], dataDir: string, extra: Record<string, unknown> = {}): Promise<string> {
  const file = join(await makeTempDir(t, 'hs-bundle-cfg-'), 'satellite.json');
  await writeFile(file, JSON.stringify(deepMerge({ dataDir, log: { level: 'warn' } }, extra)));
  return file;
}

/** Hex names of the blob files in a satellite's store. */
export async function storedBlobs(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'blobs', 'sha256');
  const out: string[] = [];
  for (const d of await readdir(root).catch(() => [] as string[])) for (const f of await readdir(join(root, d))) out.push(f);
  return out;
}

/** `groundcontrol --config CFG bundle ...`: exit code, stdout, stderr. */
export function gcBundleCli(configFile: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(GC_ENTRY, configFile, ['bundle', ...args]);
}

/**
 * Satellite A filled by sync at `generation`: apps/a, apps/b and apps/c (tag v1) on a docker-registry
 * upstream, sharing a 400 KB base layer, apps/a signed with a cosign key and its signature replicated
 * under a warn policy. `name` seeds the layers and names the temp dirs.
 */
export async function syncedThreeApps(t: Parameters<typeof makeTempDir>[0], name: string, generation: number) {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, `hs-${name}-layout-`);
  const platform = hostPlatform();
  const base = await makeLayer(`${name}-base`, 400_000, { dir: layout });
  const apps = [];
  for (const app of ['a', 'b', 'c']) {
    const img = await writeImage(layout, { tag: app, layers: [base, await makeLayer(`${name}-app-${app}`, 50_000, { dir: layout })], platform });
    await skopeoCopy(`oci:${layout}:${app}`, `docker://${upstream.host}/apps/${app}:v1`);
    apps.push({ name: app, img });
  }
  const cosign = makeCosignKey();
  const sig = await pushCosignSignature(upstream, 'apps/a', apps[0]!.img.manifestDigest, cosign.privateKey);
  const dir = await makeTempDir(t, `hs-${name}-`);
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, {
    generation,
    upstream: { url: upstream.url },
    images: apps.map((a) => ({ repository: `apps/${a.name}`, tags: ['v1'] })),
    trust: [{ name: 'edge', mode: 'warn', keys: [cosign.publicKeyPem] }],
  });
  const satA = await startSatellite(t, { config: syncConfig(desired) });
  await waitForGeneration(satA, generation);
  return { upstream, layout, platform, base, apps, cosign, sig, dir, desired, satA };
}
