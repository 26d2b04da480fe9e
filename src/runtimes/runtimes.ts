import { join } from 'node:path';
import type { Logger } from 'pino';
import type { RuntimeName, RuntimesConfig } from './config-schema.ts';
import { mirrorSpec, type MirrorSpec, type RegistryListen } from './mirror.ts';
import { RuntimeState } from './state.ts';
import { applyRuntimes, revertRuntimes, type ApplyResult, type FileChange } from './apply.ts';
import { planRuntimes, type RuntimePlan } from './plan.ts';
import { withStateLock } from './lock.ts';
import { proxyRoute } from './proxy-route.ts';
import type { HttpsProxyConfig } from '../https-proxy/index.ts';

/** The slice of the satellite config runtime configuration needs. */
export interface RuntimesContext {
  runtimes: RuntimesConfig;
  registry: RegistryListen;
  dataDir: string;
  desiredStateFile?: string | undefined;
  /** The satellite's httpsProxy section (runtimes.httpsProxy installs that route). */
  httpsProxy?: HttpsProxyConfig | undefined;
}

export interface RuntimeRunOptions {
  /** Prefix for every runtime path. */
  root?: string | undefined;
  /** Act on these runtimes instead of the enabled ones. */
  only?: RuntimeName[] | undefined;
  /** The registry's bound port (when listen.port is 0). */
  port?: number | undefined;
}

export const stateDirOf = (ctx: RuntimesContext): string => ctx.runtimes.stateDir ?? join(ctx.dataDir, 'runtimes');

async function prepare(ctx: RuntimesContext, opts: RuntimeRunOptions): Promise<{ spec: MirrorSpec; state: RuntimeState }> {
  const spec = await mirrorSpec(ctx.runtimes, ctx.registry, { desiredStateFile: ctx.desiredStateFile, ...(opts.port ? { port: opts.port } : {}) });
  spec.proxy = await proxyRoute(ctx.runtimes, ctx.httpsProxy, ctx.dataDir);
  return { spec, state: await RuntimeState.open(stateDirOf(ctx)) };
}

/** `satellite runtime show`: per runtime, the files and what apply would do. */
export async function showRuntimes(ctx: RuntimesContext, opts: RuntimeRunOptions = {}): Promise<{ spec: MirrorSpec; plans: RuntimePlan[] }> {
  const { spec, state } = await prepare(ctx, opts);
  return { spec, plans: await planRuntimes({ config: ctx.runtimes, spec, state, root: opts.root, runtimes: opts.only }) };
}

/** `satellite runtime apply`. */
export async function applyRuntimeConfig(ctx: RuntimesContext, opts: RuntimeRunOptions = {}): Promise<ApplyResult & { spec: MirrorSpec }> {
  return withStateLock(stateDirOf(ctx), async () => {
    const { spec, state } = await prepare(ctx, opts);
    return { spec, ...(await applyRuntimes({ config: ctx.runtimes, spec, state, root: opts.root, runtimes: opts.only })) };
  });
}

/** `satellite runtime revert`: needs no upstreams or mirror, only the manifest. */
export async function revertRuntimeConfig(ctx: RuntimesContext, opts: Pick<RuntimeRunOptions, 'only'> = {}): Promise<FileChange[]> {
  return withStateLock(stateDirOf(ctx), async () => revertRuntimes(await RuntimeState.open(stateDirOf(ctx)), opts.only));
}

/** runtimes.applyOnStart: apply with the bound port; a failure is logged, the satellite keeps serving. */
export async function applyRuntimesAtStart(ctx: RuntimesContext, log: Logger, port: number): Promise<void> {
  try {
    const { changes, plans } = await applyRuntimeConfig(ctx, { port });
    for (const p of plans) if (p.selected) for (const warning of p.warnings) log.warn({ runtime: p.runtime }, warning);
    const changed = changes.filter((c) => c.action !== 'unchanged');
    log.info({ changed: changed.map((c) => `${c.action} ${c.file}`), unchanged: changes.length - changed.length }, 'runtime configuration applied');
    if (changed.length) log.warn('restart the container runtimes that read changed files (containerd config.toml, docker, k3s) for it to take effect');
  } catch (err) {
    log.error({ err }, 'runtime configuration not applied');
  }
}
