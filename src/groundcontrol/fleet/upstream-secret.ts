import type { DesiredState } from '../../protocol/index.ts';
import type { UpstreamConfig } from '../config.ts';
import type { SecretBox } from '../secret-box.ts';

// The upstream password lives in Ground Control's config only. Desired records are stored
// without it and get it back when published; their content hash covers a keyed fingerprint of
// it, so a changed password still makes a new generation (docs/security.md).

/** The state as stored: no upstream password. */
export function withoutUpstreamPassword(state: DesiredState): DesiredState {
  if (state.upstream.password === undefined) return state;
  const { password: _password, ...upstream } = state.upstream;
  return { ...state, upstream };
}

/** What the content hash covers: the password replaced by its keyed fingerprint. */
export function hashableDesired(state: DesiredState, box: SecretBox): DesiredState {
  if (state.upstream.password === undefined) return state;
  return { ...state, upstream: { ...state.upstream, password: `hmac:${box.fingerprint(state.upstream.password)}` } };
}

/** The state as published: the configured password put back when the record names the same upstream account. */
export function withUpstreamPassword(state: DesiredState, upstream: UpstreamConfig | undefined): DesiredState {
  if (!upstream?.password || state.upstream.password !== undefined) return state;
  if (state.upstream.url !== upstream.url || state.upstream.username !== upstream.username) return state;
  return { ...state, upstream: { ...state.upstream, password: upstream.password } };
}
