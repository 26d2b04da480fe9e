import type { WebhookConfig } from './config-schema.ts';
import { formatImageRef, parseImageRef } from './image-ref.ts';

/** The annotation keeping the original references: {"containers/<name>": "<image>", ...}. */
export const ORIGINAL_IMAGES_ANNOTATION = 'harbor-satellite.io/original-images';

/** RFC 6902 operation (the subset the webhook emits). */
export type PatchOp = { op: 'replace' | 'add'; path: string; value: unknown };

/** Whether the satellite holds `repo` at `reference` (tag or digest) in a form nodes can pull. */
export type HoldsImage = (repo: string, reference: string) => boolean;

const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;

const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

function globs(patterns: readonly string[]): RegExp[] {
  return patterns.map((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`));
}

/** Pure: the JSONPatch for one pod (empty when nothing changes). Never throws on odd pods: it skips what it cannot read. */
export class PodMutator {
  readonly #config: WebhookConfig;
  readonly #holds: HoldsImage;
  readonly #rewrite: Map<string, string | undefined>;
  readonly #include: RegExp[];
  readonly #exclude: RegExp[];

  constructor(config: WebhookConfig, holds: HoldsImage) {
    this.#config = config;
    this.#holds = holds;
    this.#rewrite = new Map(config.rewrite.map((r) => [normalizeHost(r.registry), r.repositoryPrefix]));
    this.#include = globs(config.images.include);
    this.#exclude = globs(config.images.exclude);
  }

  /** Namespaces the configuration leaves alone. */
  skipsNamespace(ns: string | undefined): boolean {
    const { include, exclude } = this.#config.namespaces;
    const name = ns ?? 'default';
    return (include.length > 0 && !include.includes(name)) || exclude.includes(name);
  }

  /** The new reference for `image`, or undefined to leave it. */
  rewrite(image: string): string | undefined {
    const ref = parseImageRef(image);
    if (!ref || !this.#rewrite.has(ref.host)) return undefined;
    if (this.#include.length > 0 && !this.#include.some((r) => r.test(image))) return undefined;
    if (this.#exclude.some((r) => r.test(image))) return undefined;
    const prefix = this.#rewrite.get(ref.host);
    const repo = prefix ? `${prefix}/${ref.path}` : ref.path;
    if (this.#config.policy === 'exists' && !this.#holds(repo, ref.digest ?? ref.tag ?? 'latest')) return undefined;
    // Tag and digest kept as they were: a pinned digest still pins the same content.
    return formatImageRef({ host: this.#config.registry!, path: repo, tag: ref.tag, digest: ref.digest });
  }

  patch(pod: unknown): PatchOp[] {
    if (!isObject(pod) || !isObject(pod.spec)) return [];
    const ops: PatchOp[] = [];
    const originals: Record<string, string> = {};
    for (const list of CONTAINER_LISTS) {
      const containers = pod.spec[list];
      if (!Array.isArray(containers)) continue;
      containers.forEach((c: unknown, i) => {
        if (!isObject(c) || typeof c.image !== 'string') return;
        const to = this.rewrite(c.image);
        if (to === undefined || to === c.image) return;
        ops.push({ op: 'replace', path: `/spec/${list}/${i}/image`, value: to });
        originals[`${list}/${typeof c.name === 'string' ? c.name : i}`] = c.image;
      });
    }
    if (ops.length === 0) return ops;
    const metadata = isObject(pod.metadata) ? pod.metadata : undefined;
    const annotations = metadata && isObject(metadata.annotations) ? metadata.annotations : undefined;
    // On reinvocation the earlier originals stay: merged, never replaced by already-rewritten names.
    let previous: Record<string, string> = {};
    try {
      const v = annotations?.[ORIGINAL_IMAGES_ANNOTATION];
      if (typeof v === 'string') previous = JSON.parse(v) as Record<string, string>;
    } catch {
      previous = {};
    }
    const value = JSON.stringify({ ...originals, ...previous });
    if (!metadata) ops.push({ op: 'add', path: '/metadata', value: { annotations: { [ORIGINAL_IMAGES_ANNOTATION]: value } } });
    else if (!annotations) ops.push({ op: 'add', path: '/metadata/annotations', value: { [ORIGINAL_IMAGES_ANNOTATION]: value } });
    else ops.push({ op: 'add', path: `/metadata/annotations/${escapePointer(ORIGINAL_IMAGES_ANNOTATION)}`, value });
    return ops;
  }
}

function normalizeHost(h: string): string {
  const host = h.toLowerCase().replace(/:443$/, '');
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
