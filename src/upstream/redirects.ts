/** Redirect statuses a blob GET may answer with (registries hand blobs to object storage). */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export const MAX_REDIRECTS = 5;

export function isRedirect(status: number): boolean {
  return REDIRECTS.has(status);
}

/** Resolves a Location header against the URL that answered; undefined if missing or not http(s). */
export function redirectTarget(from: URL, location: string | string[] | undefined): URL | undefined {
  const value = Array.isArray(location) ? location[0] : location;
  if (!value) return undefined;
  let next: URL;
  try {
    next = new URL(value, from);
  } catch {
    return undefined;
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') return undefined;
  next.hash = '';
  return next;
}

/**
 * Whether the registry's credentials may go to `url`: only the registry's own origin (scheme, host
 * and port). Object storage gets presigned URLs and must never see our Authorization header.
 */
export function sameOrigin(a: URL, b: URL): boolean {
  return a.origin === b.origin;
}

/** For logs and error messages: presigned URLs carry signatures in the query, so drop it. */
export function redactUrl(url: URL): string {
  return `${url.origin}${url.pathname}${url.search ? '?…' : ''}`;
}
