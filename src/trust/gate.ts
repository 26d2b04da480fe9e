import type { Logger } from 'pino';
import type { TrustPolicy } from '../protocol/desired-state.ts';
import type { UpstreamPort } from '../sync/upstream-port.ts';
import { checkSignatures, refusal, replicateSignatures, type CheckOptions, type SignatureSource, type SignatureStore, type TrustResult, type Verdict } from './check.ts';
import { TrustErrorCode } from './errors.ts';
import { policyFor, type EffectivePolicy } from './verify.ts';

/** What sync records on the image for its signature check (status, reports, metrics read it). */
export interface TrustFields {
  signature: Verdict;
  signatureKey?: string;
  /** Set when the image is refused (enforce) or flagged (warn): SIGNATURE_REQUIRED / SIGNATURE_INVALID. */
  code?: string;
  reason?: string;
}

export interface TrustDecision {
  /** Set with enforce and no valid signature: the image must not be committed. */
  refused: { code: string; reason: string } | undefined;
  fields: TrustFields;
  result: TrustResult;
}

/**
 * Sync's hook before it commits an image: undefined when no policy covers the repository (nothing is
 * fetched); otherwise the verdict and whether enforce refuses the image.
 */
export async function decideTrust(
  upstream: UpstreamPort,
  policies: TrustPolicy[] | undefined,
  image: { repository: string; digest: string },
  log: Logger,
  signal: AbortSignal,
  opts: CheckOptions = {},
): Promise<TrustDecision | undefined> {
  const policy = policyFor(policies, image.repository);
  if (!policy) return undefined;
  const decision = await judge(upstream, policy, image, signal, opts);
  const { refused, fields, result } = decision;
  const code = fields.code;
  const via = result.referrers ? { referrers: result.referrers } : {};
  if (result.referrerLimits) log.warn({ ...image, reason: result.referrerLimits }, 'referrers not all read');
  if (refused) log.warn({ ...image, ...via, code: refused.code, reason: fields.reason }, 'image refused by signature policy');
  else if (code) log.warn({ ...image, ...via, code, reason: fields.reason }, 'image committed without a valid signature (policy mode warn)');
  else log.info({ ...image, ...via, key: result.keyId }, 'image signature verified');
  return decision;
}

/**
 * The verdict of one image under a policy, from wherever its signatures are read (the upstream, or
 * the copies kept in the store): sync and the pull-through proxy decide with this one function.
 */
export async function judge(
  source: SignatureSource,
  policy: EffectivePolicy,
  image: { repository: string; digest: string },
  signal: AbortSignal,
  opts: CheckOptions = {},
): Promise<TrustDecision> {
  return decide(policy, await checkSignatures(source, policy, image, signal, opts));
}

/** What a check's result means under the policy: the fields to show, and the refusal with enforce. */
export function decide(policy: EffectivePolicy, result: TrustResult): TrustDecision {
  const code = result.verdict === 'verified' ? undefined : result.verdict === 'unsigned' ? TrustErrorCode.required : TrustErrorCode.invalid;
  const fields: TrustFields = { signature: result.verdict };
  if (result.keyId) fields.signatureKey = result.keyId;
  if (code) {
    fields.code = code;
    fields.reason = result.reason ?? code;
  }
  const refusedCode = refusal(result);
  const refused = refusedCode ? { code: refusedCode, reason: `signature policy ${policy.from.join(', ')} (enforce): ${fields.reason}` } : undefined;
  return { refused, fields, result };
}

/** After the image is committed: store its signatures beside it (failures are logged, not fatal). */
export async function keepSignatures(store: SignatureStore, repository: string, decision: TrustDecision | undefined, log: Logger): Promise<void> {
  const replica = decision?.result.replica;
  if (!replica) return;
  try {
    await replicateSignatures(store, repository, replica, log);
  } catch (err) {
    log.warn({ err, repository, tags: replica.groups.flatMap((g) => g.tags) }, 'signatures not replicated');
  }
}
