import { sendJson } from '../http.ts';
import type { Handler } from '../context.ts';

/** dist-spec end-1: GET /v2/ answers 200 when the client may use the API. */
export const getBase: Handler = async ({ res }) => {
  sendJson(res, 200, {});
};
