import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { readCounts, type FleetCounts } from './db/indexes.ts';
import type { FleetContext, FleetMetrics } from './fleet/context.ts';
import type { WebhookStats } from './webhooks/deliverer.ts';

/** Upper bounds in seconds of report lag (satellite clock to recorded; includes clock skew). */
const LAG_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600];

/** What the metrics read besides the fleet, each optional. */
export interface MetricSources {
  /** Console sessions open. */
  sessions?: (() => number) | undefined;
  /** The embedded broker's connections (absent with an external broker). */
  broker?: { readonly connections: { open: number; pending: number } } | undefined;
  webhooks?: WebhookStats | undefined;
}

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
 * broker link and its publishes, the embedded broker's connections, report lag, console sessions,
 * webhook deliveries, and API requests by route template.
 */
export class GcMetrics implements FleetMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'method' | 'route' | 'status_class'>;
  readonly #duration: Histogram<'method' | 'route'>;
  readonly #lag: Histogram<'type'>;
  #sessionsWatched = false;

  constructor(ctx: FleetContext, opts: MetricSources = {}) {
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
    if (opts.sessions) this.watchSessions(opts.sessions);
    new Counter({
      name: 'groundcontrol_mqtt_publishes_total',
      help: 'Messages Ground Control published to satellites, by channel (desired: desired states; commands) and result (ok: acknowledged by the broker, failed).',
      labelNames: ['channel', 'result'],
      registers,
      collect() {
        this.reset();
        for (const [channel, c] of ctx.publisher.published ?? []) {
          this.inc({ channel, result: 'ok' }, c.ok);
          this.inc({ channel, result: 'failed' }, c.failed);
        }
      },
    });
    const broker = opts.broker;
    if (broker) {
      new Gauge({
        name: 'groundcontrol_broker_connections',
        help: 'MQTT connections open on the embedded broker, by state (all, pending: not logged in yet).',
        labelNames: ['state'],
        registers,
        collect() {
          const c = broker.connections;
          this.set({ state: 'all' }, c.open);
          this.set({ state: 'pending' }, c.pending);
        },
      });
    }
    this.#lag = new Histogram({
      name: 'groundcontrol_report_lag_seconds',
      help: "Time from a satellite message's own timestamp to Ground Control recording it durably, by message type (includes clock skew).",
      labelNames: ['type'],
      buckets: LAG_BUCKETS,
      registers,
    });
    const webhooks = opts.webhooks;
    if (webhooks) {
      new Counter({
        name: 'groundcontrol_webhook_deliveries_total',
        help: 'Webhook delivery outcomes by webhook (id, origin) and result: delivered, failed (an attempt; retried), gave_up (retries exhausted), dropped (queue full or log trimmed).',
        labelNames: ['webhook', 'origin', 'result'],
        registers,
        collect() {
          this.reset();
          for (const w of webhooks.webhooks()) for (const [result, n] of Object.entries(w.counts)) this.inc({ webhook: w.id, origin: w.origin, result }, n);
        },
      });
      new Gauge({
        name: 'groundcontrol_webhook_queue_depth',
        help: 'Events waiting for delivery to each webhook.',
        labelNames: ['webhook', 'origin'],
        registers,
        collect() {
          for (const w of webhooks.webhooks()) this.set({ webhook: w.id, origin: w.origin }, w.depth);
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

  /** Adds the console sessions gauge (once). */
  watchSessions(sessions: () => number): void {
    if (this.#sessionsWatched) return;
    this.#sessionsWatched = true;
    new Gauge({
      name: 'groundcontrol_console_sessions',
      help: 'Console sessions open (in memory).',
      registers: [this.registry],
      collect() {
        this.set(sessions());
      },
    });
  }

  reportRecorded(type: string, lagSeconds: number): void {
    this.#lag.observe({ type }, lagSeconds);
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
