import { isDigest } from '../lib/digest.ts';

/**
 * A membership test for "is this repository and reference in the set": listed as is, or a digest
 * within a listed repository (a tag's index and platform manifests are asked for by digest).
 */
export function referenceMatcher(refs: Iterable<{ repository: string; reference: string }>): (repository: string, reference: string) => boolean {
  const keys = new Set<string>();
  const repos = new Set<string>();
  for (const r of refs) {
    keys.add(`${r.repository}\0${r.reference}`);
    repos.add(r.repository);
  }
  return (repository, reference) => keys.has(`${repository}\0${reference}`) || (repos.has(repository) && isDigest(reference));
}
