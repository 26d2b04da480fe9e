import { registryError } from '../errors.ts';
import { pageParams, sendJson } from '../http.ts';
import type { Handler } from '../context.ts';

/** dist-spec end-8a/8b: lexically ordered tags with n/last pagination and a Link to the next page. */
export const listTags: Handler = async ({ res, url, name, store }) => {
  if (!store.repositoryExists(name)) throw registryError('NAME_UNKNOWN', `repository ${name} not known`);
  const page = pageParams(url, 'tag');
  const tags = store.listTags(name, { ...page, ...(page.n !== undefined ? { n: page.n + 1 } : {}) });
  const headers: Record<string, string> = {};
  if (page.n !== undefined && tags.length > page.n) {
    tags.length = page.n;
    const last = tags[tags.length - 1];
    if (last !== undefined) {
      headers.Link = `</v2/${name}/tags/list?n=${page.n}&last=${encodeURIComponent(last)}>; rel="next"`;
    }
  }
  sendJson(res, 200, { name, tags }, headers);
};
