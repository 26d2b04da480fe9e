import type { HealthProbe, HealthReport } from '../registry/handlers/health.ts';
import type { Store } from '../store/index.ts';
import type { SyncStatus } from '../sync/index.ts';

export interface HealthInputs {
  store: Pick<Store, 'listRepositories' | 'disk'>;
  listening: () => boolean;
  /** Images' states (for DISK_FULL), when sync runs. */
  images?: () => SyncStatus['images'];
}

/**
 * Liveness: the process answers. Readiness: the store is open and its index readable, the registry
 * listens, and free space is not under store.minFreeBytes. Degraded (still ready, still serving what
 * is stored): images waiting for space (DISK_FULL) or a read-only data filesystem (STORE_READ_ONLY).
 */
export function healthProbe(inputs: HealthInputs): HealthProbe {
  return {
    live: (): HealthReport => ({ status: 'ok', checks: { process: 'ok' }, degraded: [] }),
    ready: (): HealthReport => {
      const checks: HealthReport['checks'] = {};
      const degraded: string[] = [];
      try {
        // A cheap read through the LMDB index: throws when the store is closed or the index broken.
        inputs.store.listRepositories({ n: 1 });
        checks.index = 'ok';
      } catch {
        checks.index = 'INDEX_UNREADABLE';
      }
      checks.registry = inputs.listening() ? 'ok' : 'NOT_LISTENING';
      const disk = inputs.store.disk.refresh();
      checks.disk = disk.condition === 'ok' ? 'ok' : disk.condition === 'low' ? 'DISK_FULL' : 'STORE_READ_ONLY';
      if (disk.condition === 'read-only') degraded.push('STORE_READ_ONLY');
      if (disk.condition === 'low' || inputs.images?.().some((i) => i.code === 'DISK_FULL')) degraded.push('DISK_FULL');
      const ready = checks.index === 'ok' && checks.registry === 'ok' && disk.condition !== 'low';
      return { status: !ready ? 'unavailable' : degraded.length > 0 ? 'degraded' : 'ok', checks, degraded };
    },
  };
}
