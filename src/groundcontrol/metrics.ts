import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { readCounts, type FleetCounts } from './db/indexes.ts';
import type { FleetContext } from './fleet/context.ts';

/** Upper bounds in seconds of API answers (a status page is ms; a large group change can take s). */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const STATE_LABELS: Array<[keyof FleetCounts, string]> = [
  ['satellites', 'all'],
  ['registered', 'registered'],
  ['online', 'online'],
  ['offline', 'offline'],
  ['unknown', 'never_seen'],
  ['inSync', 'in_sync'],
  ['outOfSync', 'out_of_sync'],
  ['failed', 'failed'],
];

/**
 * Ground Control's Prometheus metrics (GET /api/v1/metrics, behind the admin token): the fleet by
 * presence and convergence (the index counters, read at scrape time: no per-report work), the
 * broker link, console sessions, and API requests by route template.
 */
export class GcMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'method' | 'route' | 'status_class'>;
  readonly #duration: Histogram<'method' | 'route'>;

  constructor(ctx: FleetContext, opts: { sessions?: () => number } = {}) {
    const registers = [this.registry];
    new Gauge({
      name: 'groundcontrol_satellites',
      help: 'Satellites by state: all, registered, online, offline, never_seen, in_sync (applied the newest generation), out_of_sync, failed (a failed image in the last report).',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = readCounts(ctx.db);
        for (const [key, state] of STATE_LABELS) this.set({ state }, counts[key]);
      },
    });
    new Gauge({
      name: 'groundcontrol_broker_connected',
      help: '1 while Ground Control is connected to the MQTT broker.',
      registers,
      collect() {
        this.set(ctx.publisher.connected ? 1 : 0);
      },
    });
    const sessions = opts.sessions;
    if (sessions) {
      new Gauge({
        name: 'groundcontrol_console_sessions',
        help: 'Console sessions open (in memory).',
        registers,
        collect() {
          this.set(sessions());
        },
      });
    }
    this.#requests = new Counter({
      name: 'groundcontrol_api_requests_total',
      help: 'API requests answered, by method, route template (/api/v1/satellites/:id) and status class.',
      labelNames: ['method', 'route', 'status_class'],
      registers,
    });
    this.#duration = new Histogram({
      name: 'groundcontrol_api_request_duration_seconds',
      help: 'Time to answer an API request, by method and route template.',
      labelNames: ['method', 'route'],
      buckets: DURATION_BUCKETS,
      registers,
    });
  }

  /** One answered request; `route` is the template (unknown paths count as "other"). */
  observe(method: string, route: string, status: number, seconds: number): void {
    this.#requests.inc({ method, route, status_class: `${Math.floor(status / 100)}xx` });
    this.#duration.observe({ method, route }, seconds);
  }
}

/** The route template of a matched path: each parameter's value replaced by its name. */
export function routeTemplate(pathname: string, params: Record<string, string>): string {
  let out = pathname.replace(/\/$/, '');
  for (const [name, value] of Object.entries(params)) out = out.replace(`/${value}`, `/:${name}`);
  return out;
}
