/** A failed API call: the API's error code and message, or a connection problem. */
export class ApiCallError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status: number) {
    super(message);
    this.name = 'ApiCallError';
    this.code = code;
    this.status = status;
  }
}

/** Minimal client of the Ground Control API for the CLI. */
export class ApiClient {
  readonly #base: string;
  readonly #token: string | undefined;

  constructor(baseUrl: string, token: string | undefined) {
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#token = token;
  }

  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.#base}${path}`, {
        method,
        headers: {
          ...(this.#token ? { Authorization: `Bearer ${this.#token}` } : {}),
          ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(30_000)]) : AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new ApiCallError('CONNECTION_FAILED', `cannot reach ${this.#base}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, 0);
    }
    const text = await res.text();
    let doc: unknown;
    try {
      doc = text ? JSON.parse(text) : {};
    } catch {
      throw new ApiCallError('BAD_RESPONSE', `${method} ${path}: HTTP ${res.status}, not JSON`, res.status);
    }
    if (!res.ok) {
      const e = (doc as { error?: { code?: string; message?: string } }).error;
      throw new ApiCallError(e?.code ?? `HTTP_${res.status}`, e?.message ?? `HTTP ${res.status}`, res.status);
    }
    return doc as T;
  }
}
