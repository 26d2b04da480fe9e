/** Zero-touch registration over HTTP: POST /api/v1/register. */
export const REGISTER_PATH = '/api/v1/register';

export interface RegisterRequest {
  token: string;
  /** Free text the satellite reports about itself (hostname, board). */
  hostname?: string;
  version?: string;
}

export interface RegisterResponse {
  satelliteId: string;
  name: string;
  site: string | null;
  mqtt: { url: string; username: string; password: string; topicPrefix: string };
  /** Upstream (robot) credentials for the satellite's sync; null when Ground Control has none. */
  upstream: { url: string; username?: string; password?: string } | null;
  /** Ground Control's bundle signing public key (Ed25519, PEM): bundles it signs are checked with it. */
  bundleKey?: string;
}

export const registerRequestSchema = {
  $id: 'register-request',
  type: 'object',
  additionalProperties: false,
  required: ['token'],
  properties: {
    token: { type: 'string', minLength: 16, maxLength: 200 },
    hostname: { type: 'string', maxLength: 255 },
    version: { type: 'string', maxLength: 64 },
  },
} as const;
