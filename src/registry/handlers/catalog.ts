import { pageParams, sendJson } from '../http.ts';
import type { Handler } from '../context.ts';

/** GET /v2/_catalog with the same pagination as tags. */
export const getCatalog: Handler = async ({ res, url, store }) => {
  const page = pageParams(url, 'name');
  const repos = store.listRepositories({ ...page, ...(page.n !== undefined ? { n: page.n + 1 } : {}) });
  const headers: Record<string, string> = {};
  if (page.n !== undefined && repos.length > page.n) {
    repos.length = page.n;
    const last = repos[repos.length - 1];
    if (last !== undefined) headers.Link = `</v2/_catalog?n=${page.n}&last=${encodeURIComponent(last)}>; rel="next"`;
  }
  sendJson(res, 200, { repositories: repos }, headers);
};
