/** One challenge of a WWW-Authenticate header: scheme and parameter names lower-cased. */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/**
 * Parses WWW-Authenticate (RFC 9110 §11.6.1): one or more challenges, each a scheme followed by
 * comma-separated auth-params whose values are tokens or quoted strings (with \-escapes), e.g.
 * `Bearer realm="https://h/service/token",service="harbor-registry",scope="repository:p/r:pull"`.
 * A bare token starts a new challenge. Lenient: a malformed tail is dropped, token68 ignored.
 */
export function parseWwwAuthenticate(header: string | string[] | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  if (Array.isArray(header)) return header.flatMap((h) => parseWwwAuthenticate(h));
  const out: AuthChallenge[] = [];
  let current: AuthChallenge | undefined;
  let s = header;
  for (;;) {
    s = s.replace(/^[\s,]+/, '');
    const name = TOKEN_RE.exec(s)?.[0];
    if (!name) break;
    s = s.slice(name.length);
    const eq = /^\s*=\s*/.exec(s);
    if (!eq || !current) {
      current = { scheme: name.toLowerCase(), params: {} };
      out.push(current);
      continue;
    }
    s = s.slice(eq[0].length);
    let value = '';
    if (s.startsWith('"')) {
      let i = 1;
      for (; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        value += s[i];
      }
      s = s.slice(i + 1);
    } else {
      value = /^[^,\s]*/.exec(s)![0];
      s = s.slice(value.length);
    }
    current.params[name.toLowerCase()] = value;
  }
  return out;
}
