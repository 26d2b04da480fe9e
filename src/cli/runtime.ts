import type { SatelliteConfig } from '../config/index.ts';
import { EXIT_CONFIG } from '../config/index.ts';
import { errnoCode, isSatelliteError } from '../lib/errors.ts';
import {
  RUNTIME_NAMES,
  applyRuntimeConfig,
  formatChanges,
  formatPlans,
  revertRuntimeConfig,
  showRuntimes,
  type RuntimeName,
  type RuntimesContext,
} from '../runtimes/index.ts';

export const RUNTIME_USAGE = `  runtime show       per runtime: the files it reads and what apply would change (dry run)
  runtime apply      point the enabled runtimes at this satellite (merge, back up the originals)
  runtime revert     restore every file apply changed, byte for byte
  runtime webhook-config  the same as webhook manifests

runtime options:
  --runtime NAME     act on NAME (${RUNTIME_NAMES.join(', ')}) instead of the enabled ones; repeatable
  --root DIR         prefix every runtime path with DIR (image building, tests)
  --content          show: print the merged files`;

export interface RuntimeFlags {
  runtime?: string[] | undefined;
  root?: string | undefined;
  content?: boolean | undefined;
}

/** `satellite runtime show|apply|revert`; returns the exit status. */
export async function runtimeCommand(sub: string | undefined, config: SatelliteConfig, flags: RuntimeFlags): Promise<number> {
  const only = (flags.runtime ?? []).flatMap((r) => r.split(',')).filter(Boolean);
  const unknown = only.filter((r) => !(RUNTIME_NAMES as readonly string[]).includes(r));
  if (unknown.length) {
    console.error(`unknown runtime ${unknown.join(', ')}: choose from ${RUNTIME_NAMES.join(', ')}`);
    return 2;
  }
  const ctx: RuntimesContext = {
    runtimes: config.runtimes,
    registry: config.registry,
    dataDir: config.dataDir,
    desiredStateFile: config.sync.desiredStateFile,
    httpsProxy: config.httpsProxy,
  };
  const opts = { root: flags.root, only: only as RuntimeName[] };
  try {
    if (sub === 'show') {
      const { spec, plans } = await showRuntimes(ctx, opts);
      console.log(formatPlans(spec, plans, flags.content));
      return 0;
    }
    if (sub === 'apply') {
      const { changes, plans } = await applyRuntimeConfig(ctx, opts);
      if (!plans.some((p) => p.selected)) {
        console.error('no runtime enabled: set runtimes.<name>.enabled in the config or pass --runtime NAME');
        return 2;
      }
      console.log(formatChanges(changes, plans));
      return 0;
    }
    if (sub === 'revert') {
      console.log(formatChanges(await revertRuntimeConfig(ctx, opts)));
      return 0;
    }
  } catch (err) {
    if (isSatelliteError(err)) {
      console.error(`satellite runtime ${sub}: ${err.message}`);
      return err.code === 'CONFIG_INVALID' ? EXIT_CONFIG : 1;
    }
    const code = errnoCode(err);
    if (!code) throw err;
    // A write failed part-way (permissions, disk full): what was written is in the manifest.
    console.error(`satellite runtime ${sub}: ${(err as Error).message}${sub === 'apply' ? '\nfiles written before the failure are recorded: `satellite runtime revert` undoes them' : ''}`);
    return 1;
  }
  console.error(`unknown command: runtime ${sub ?? ''}\n\nusage: satellite runtime show|apply|revert [--config FILE] [--runtime NAME] [--root DIR]`);
  return 2;
}
