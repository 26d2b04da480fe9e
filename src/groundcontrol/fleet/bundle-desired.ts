import type { DesiredState } from '../../protocol/index.ts';
import type { UpstreamConfig } from '../config.ts';
import type { GcDb } from '../db/db.ts';
import { gcError } from '../errors.ts';
import { computeDesired } from './desired.ts';
import { withoutUpstreamPassword } from './upstream-secret.ts';

/**
 * What a bundle for this satellite or group must hold. A satellite: its stored desired state, the
 * generation it was published with. A group: the state a satellite in that group alone
 * would get (generation 0). Never with the upstream password or the
 * site's peer secret: a bundle travels on a stick.
 */
export function desiredForBundle(db: GcDb, upstream: UpstreamConfig, target: { satellite: string } | { group: string }): DesiredState {
  if ('satellite' in target) {
    if (!db.satellites.get(target.satellite)) throw gcError('SATELLITE_UNKNOWN', `no satellite ${target.satellite}`);
    const record = db.desired.get(target.satellite);
    if (!record) throw gcError('NOT_FOUND', `satellite ${target.satellite} has no desired state yet: assign it a group`);
    const state = withoutUpstreamPassword(record.state);
    // Nor the site's peer secret.
    if (state.site?.secret === undefined) return state;
    const { secret: _secret, ...site } = state.site;
    return { ...state, site };
  }
  const group = db.groups.get(target.group);
  if (!group) throw gcError('GROUP_UNKNOWN', `no group ${target.group}`);
  return withoutUpstreamPassword(computeDesired([group], upstream, 0));
}
