/** dist-spec endpoints. <name> may contain slashes, so every pattern anchors on its suffix. */
export type RouteName =
  | 'base'
  | 'catalog'
  | 'manifest'
  | 'blob'
  | 'uploadStart'
  | 'upload'
  | 'tags'
  | 'referrers';

export interface Route {
  route: RouteName;
  name?: string;
  ref?: string;
}

const PATTERNS: Array<[RegExp, RouteName]> = [
  [/^\/v2\/?$/, 'base'],
  [/^\/v2\/_catalog$/, 'catalog'],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, 'manifest'],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, 'uploadStart'],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, 'upload'],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, 'blob'],
  [/^\/v2\/(.+)\/tags\/list$/, 'tags'],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, 'referrers'],
];

export function matchRoute(pathname: string): Route | undefined {
  for (const [re, route] of PATTERNS) {
    const m = re.exec(pathname);
    if (!m) continue;
    const out: Route = { route };
    if (m[1] !== undefined) out.name = m[1];
    if (m[2] !== undefined) out.ref = m[2];
    return out;
  }
  return undefined;
}
