import { Counter, Gauge, type Registry } from 'prom-client';

/** One sample: a value, or a value per label set. */
export type Samples = number | Array<[Record<string, string>, number]>;

interface Def {
  name: string;
  help: string;
  labelNames?: readonly string[];
  /** Reads the domain's own counters at scrape time (nothing is counted twice or kept here). */
  read: () => Samples | Promise<Samples>;
}

function fill(metric: Gauge | Counter, samples: Samples): void {
  metric.reset();
  if (typeof samples === 'number') {
    if (metric instanceof Gauge) metric.set(samples);
    else metric.inc(Math.max(0, samples));
    return;
  }
  for (const [labels, value] of samples) {
    if (metric instanceof Gauge) metric.set(labels, value);
    else metric.inc(labels, Math.max(0, value));
  }
}

function fromDomain(Kind: typeof Gauge | typeof Counter, registry: Registry, def: Def): void {
  const { read } = def;
  new Kind({
    name: def.name,
    help: def.help,
    labelNames: def.labelNames ?? [],
    registers: [registry],
    async collect() {
      fill(this, await read());
    },
  });
}

/** A gauge whose value is read from a domain when Prometheus scrapes. */
export function gaugeFrom(registry: Registry, def: Def): void {
  fromDomain(Gauge, registry, def);
}

/**
 * A counter whose value is a domain's running total, read when Prometheus scrapes. The totals
 * start at zero with the process, which Prometheus' rate() treats as a counter reset.
 */
export function counterFrom(registry: Registry, def: Def): void {
  fromDomain(Counter, registry, def);
}

/** 1 for true, 0 for false or unknown. */
export const bool = (b: boolean | null | undefined): number => (b ? 1 : 0);

/** Calls fn once per scrape: every metric of one scrape that asks gets the same reading. */
export function perScrape<T>(fn: () => T): () => T {
  let cached: { value: T } | undefined;
  return () => {
    if (!cached) {
      cached = { value: fn() };
      setImmediate(() => (cached = undefined));
    }
    return cached.value;
  };
}
