import { isMap, isScalar, isSeq, parseDocument, type Document, type Scalar } from 'yaml';
import { RuntimeErrorCode, runtimeError } from './errors.ts';
import type { MirrorSpec } from './mirror.ts';
import type { RuntimesConfig } from './config-schema.ts';
import type { RuntimeTargets } from './target.ts';

/**
 * k3s and rke2: registries.yaml `mirrors.<host>.endpoint` with the satellite first (k3s falls back
 * to the upstream's default endpoint by itself; a configured server is listed after the
 * satellite), and `configs.<satellite>.tls` for HTTPS. Comments and other entries (auth,
 * rewrites, other mirrors) are kept.
 */
export function k3sTargets(config: RuntimesConfig['k3s'], spec: MirrorSpec): RuntimeTargets {
  const path = config.registriesYaml;
  return { runtime: 'k3s', files: [{ runtime: 'k3s', path, render: (current, file) => renderRegistriesYaml(current, file, spec) }], warnings: [] };
}

const norm = (u: string) => u.replace(/\/+$/, '');

export function renderRegistriesYaml(current: string | undefined, file: string, spec: MirrorSpec): string {
  const doc: Document = parseDocument(current ?? '', { keepSourceTokens: false });
  if (doc.errors.length > 0) {
    throw runtimeError(RuntimeErrorCode.fileInvalid, `${file} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}; nothing was changed`);
  }
  if (doc.contents === null) doc.contents = doc.createNode({}) as never;
  if (!isMap(doc.contents)) throw runtimeError(RuntimeErrorCode.fileInvalid, `${file} must hold a YAML mapping; nothing was changed`);
  for (const key of ['mirrors', 'configs']) {
    const v = doc.get(key);
    if (v !== undefined && v !== null && !isMap(v)) throw runtimeError(RuntimeErrorCode.fileInvalid, `${file}: "${key}" must be a mapping; nothing was changed`);
  }
  const { mirror } = spec;
  for (const u of spec.upstreams) {
    const first = [mirror.url, ...(u.defaultServer ? [] : [u.server])];
    const path = ['mirrors', u.host, 'endpoint'];
    const node = doc.getIn(path, true);
    if (node === undefined || node === null) {
      doc.setIn(path, doc.createNode(first));
      continue;
    }
    if (!isSeq(node) || !node.items.every((i) => isScalar(i) && typeof i.value === 'string')) {
      throw runtimeError(RuntimeErrorCode.fileInvalid, `${file}: mirrors."${u.host}".endpoint must be a list of URLs; nothing was changed`);
    }
    // Edit the list in place so comments on the other endpoints survive.
    node.items = node.items.filter((i) => !first.includes(norm(String((i as Scalar).value))));
    node.items.unshift(...first.map((e) => doc.createNode(e)));
  }
  if (mirror.https) {
    const tls = mirror.caFile ? { ca_file: mirror.caFile } : { insecure_skip_verify: true };
    for (const [k, v] of Object.entries(tls)) doc.setIn(['configs', mirror.hostPort, 'tls', k], v);
  }
  return doc.toString();
}
