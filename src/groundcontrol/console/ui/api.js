// The console talks to the same /api/v1 as the CLI, authenticated by the session cookie; every
// state-changing request carries the session's CSRF token (double submit).

let csrfToken = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** One API call; JSON in, JSON out; throws ApiError with the API's code and message. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    doc = null;
  }
  if (!res.ok) {
    const err = doc?.error ?? {};
    // The session expired or was ended elsewhere: back to the login form.
    if (res.status === 401 && path !== '/api/v1/session') dispatchEvent(new Event('gc-unauthorized'));
    throw new ApiError(res.status, err.code ?? 'HTTP_' + res.status, err.message ?? res.statusText);
  }
  return doc;
}

/** The current session (after a reload the cookie is still there; the CSRF token comes back here). */
export async function currentSession() {
  try {
    const s = await api('GET', '/api/v1/session');
    csrfToken = s.csrfToken ?? null;
    return s;
  } catch (err) {
    if (err.status === 401) return null;
    throw err;
  }
}

export async function login(token) {
  const s = await api('POST', '/api/v1/session', { token });
  csrfToken = s.csrfToken;
  return s;
}

export async function logout() {
  try {
    await api('DELETE', '/api/v1/session');
  } finally {
    csrfToken = null;
  }
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? '?' + s : '';
}
