import type { TrustPolicy } from '../protocol/desired-state.ts';
import type { Store } from '../store/index.ts';
import { desiredRefs, refKey, type DesiredState } from './desired-state.ts';
import type { SyncRecords } from './records.ts';

/** Where the generation applied came from: a sync run, or a bundle import (docs/bundles.md). */
export type AppliedSource = 'sync' | 'bundle';

/** An image a bundle import committed or refused, as the import reports it. */
export interface ImportedImage {
  repository: string;
  reference: string;
  digest: string;
  status: 'imported' | 'refused';
  code?: string | undefined;
  reason?: string | undefined;
  signature?: 'verified' | 'unsigned' | 'invalid' | undefined;
}

/**
 * What became of the desired state a bundle carries:
 * - applied: it is the desired state in force and every one of its references was imported: the
 *   satellite reports its generation applied, as after a sync;
 * - adopted: it is in force (newer than the one held), but some image was refused: not applied;
 * - older: older than the desired state in force: blobs and images imported, nothing rolled back;
 * - ignored: the bundle is not signed by a key this satellite trusts for Ground Control, so its
 *   desired state (upstream, trust policies) is not Ground Control's word.
 */
export interface DesiredOutcome {
  /** null when an ignored desired state does not even name one. */
  generation: number | null;
  status: 'applied' | 'adopted' | 'older' | 'ignored';
  reason?: string;
}

/** How a bundle's desired state reaches the sync records: the engine's, or the store's when the satellite is stopped. */
export interface BundleApplier {
  /** The signature policies the bundle's images are checked with: the bundle's own when it will be in force. */
  policies(bundle: DesiredState | undefined): TrustPolicy[] | undefined;
  /** After the images are committed: takes the bundle's desired state if newer, and its generation as applied if whole. */
  apply(bundle: DesiredState, images: ImportedImage[]): Promise<DesiredOutcome>;
}

export interface ApplierHost {
  records: SyncRecords;
  store: Pick<Store, 'childrenOf' | 'getManifest'>;
  /** The desired state in force. */
  current(): DesiredState | undefined;
  /** Persists (and, in a running engine, puts in force) a newer desired state. */
  setDesired(state: DesiredState): Promise<void>;
  /** config sync.platforms */
  platforms?: string[] | undefined;
  now?: () => Date;
}

/** Whether a bundle's desired state takes over: none held yet, or a newer generation. Never backwards. */
function isNewer(bundle: DesiredState, current: DesiredState | undefined): boolean {
  return current === undefined || bundle.generation > current.generation;
}

/**
 * The bundle's desired state as this satellite keeps it. Trust material for bundles is never taken
 * from a bundle (a stick cannot vouch for itself): bundleKeys stay those Ground Control sent. What
 * a bundle leaves out (the upstream password, the site's peer secret) is kept from the state held
 * when it names the same upstream account and site; Ground Control's next message brings them anyway.
 */
export function adoptedState(bundle: DesiredState, current: DesiredState | undefined): DesiredState {
  const { bundleKeys: _ignored, ...state } = bundle;
  const out: DesiredState = { ...state, upstream: { ...state.upstream } };
  if (current?.bundleKeys) out.bundleKeys = current.bundleKeys;
  if (out.upstream.password === undefined && current?.upstream.password !== undefined && current.upstream.url === out.upstream.url && current.upstream.username === out.upstream.username) {
    out.upstream.password = current.upstream.password;
  }
  if (out.site && out.site.secret === undefined && current?.site?.secret !== undefined && current.site.name === out.site.name) {
    out.site = { ...out.site, secret: current.site.secret };
  }
  return out;
}

export function bundleApplier(host: ApplierHost): BundleApplier {
  return {
    policies: (bundle) => (bundle && isNewer(bundle, host.current()) ? bundle.trust : host.current()?.trust),
    async apply(bundle, images) {
      const current = host.current();
      if (!isNewer(bundle, current) && bundle.generation < current!.generation) {
        return { generation: bundle.generation, status: 'older', reason: `generation ${bundle.generation} is older than the desired state in force (${current!.generation}): images imported, desired state kept` };
      }
      const inForce = isNewer(bundle, current) ? adoptedState(bundle, current) : current!;
      const refs = desiredRefs(inForce, host.platforms);
      const wanted = new Set(refs.map(refKey));
      const byRef = new Map(images.map((i) => [refKey(i), i]));
      // The records a sync run would write for these references: state, and the manifests each holds.
      for (const img of images) {
        if (!wanted.has(refKey(img))) continue;
        if (img.status === 'imported') {
          await host.records.recordHeld(img, [img.digest, ...host.store.childrenOf(img.digest).filter((d) => host.store.getManifest(img.repository, d) !== undefined)]);
          await host.records.setImage(img, { status: 'ok', digest: img.digest, ...(img.signature ? { signature: img.signature } : {}), ...(img.code ? { code: img.code, reason: img.reason } : {}) });
        } else {
          await host.records.setImage(img, { status: 'failed', code: img.code, reason: img.reason, ...(img.signature ? { signature: img.signature } : {}) });
        }
      }
      const missing = refs.filter((r) => byRef.get(refKey(r))?.status !== 'imported');
      const applied = host.records.applied();
      const whole = missing.length === 0;
      // Never backwards, and a generation a sync run already applied stays the sync's.
      if (whole && (applied === undefined || applied.generation < inForce.generation)) {
        await host.records.setApplied(inForce.generation, (host.now?.() ?? new Date()).toISOString(), 'bundle');
      }
      // The desired state last: a running engine starts a run on it, which finds these records.
      if (inForce !== current) await host.setDesired(inForce);
      if (whole) return { generation: bundle.generation, status: 'applied' };
      return {
        generation: bundle.generation,
        status: 'adopted',
        reason: `${missing.length} of ${refs.length} references not imported (${missing.slice(0, 3).map(refKey).join(', ')}${missing.length > 3 ? ', ...' : ''}): sync applies the rest when it can`,
      };
    },
  };
}
