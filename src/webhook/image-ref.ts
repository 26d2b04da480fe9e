/** An image reference split the way docker and containerd read it. */
export interface ImageRef {
  /** Registry host[:port]; docker.io for names without one. */
  host: string;
  /** Repository path (docker.io single names get `library/`). */
  path: string;
  tag: string | undefined;
  /** `sha256:...` when the reference pins one. */
  digest: string | undefined;
}

// distribution/reference: a first component is a host when it has a '.' or ':' or is localhost.
const REF = /^(?:([A-Za-z0-9.-]+(?::[0-9]+)?|\[[0-9A-Fa-f:]+\](?::[0-9]+)?)\/)?([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@([a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Fa-f0-9]{32,}))?$/;

/** Parses an image reference; undefined when it is not one (the webhook then leaves it alone). */
export function parseImageRef(ref: string): ImageRef | undefined {
  if (ref.length > 1024) return undefined;
  const m = REF.exec(ref);
  if (!m) return undefined;
  let host = m[1];
  let path = m[2]!;
  if (host !== undefined && !host.includes('.') && !host.includes(':') && host !== 'localhost') {
    path = `${host}/${path}`;
    host = undefined;
  }
  if (host === undefined) {
    host = 'docker.io';
    if (!path.includes('/')) path = `library/${path}`;
  }
  if (host === 'index.docker.io') host = 'docker.io';
  return { host: host.toLowerCase(), path, tag: m[3], digest: m[4] };
}

/** `host/path[:tag][@digest]` (a reference without tag or digest means :latest to every runtime). */
export function formatImageRef(r: ImageRef): string {
  return `${r.host}/${r.path}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}
