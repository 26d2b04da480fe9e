/** One descriptor of a referrers answer (dist-spec 1.1 end-12a), as far as it parsed. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** One page of `GET /v2/<name>/referrers/<digest>` as a client read it. */
export interface ReferrersPage {
  manifests: ReferrerDescriptor[];
  /** Descriptors the page listed that were not well-formed (skipped). */
  malformed: number;
  /** The registry applied the artifactType filter (`OCI-Filters-Applied: artifactType`). */
  filtered: boolean;
  /** Path and query of the next page (Link rel="next"), under the registry's base path. */
  next?: string;
}
