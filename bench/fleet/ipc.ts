// Messages between bench/fleet.ts and its client worker processes (bench/fleet/client-worker.ts).

/** One simulated satellite: its id and the MQTT password its registration returned. */
export interface SimSatellite {
  id: string;
  password: string;
}

export type ToWorker =
  | { op: 'connect'; port: number; satellites: SimSatellite[]; concurrency: number; timeoutMs: number; version: string }
  | { op: 'collect'; generation: number }
  | { op: 'close' };

/**
 * Per satellite of a generation, epoch milliseconds (Date.now(), one clock for every process):
 * the desired message arrived, the state message acknowledging it was written to the socket, and
 * the broker's PUBACK for that state message arrived. NaN = did not happen (yet).
 */
export type Timing = [received: number, published: number, brokerAcked: number];

export type FromWorker =
  | { op: 'connected'; connected: number; failed: number; retries: number; firstError: string | null }
  | { op: 'published'; generation: number; count: number; at: number }
  | { op: 'timings'; generation: number; timings: Timing[] }
  | { op: 'error'; message: string }
  | { op: 'closed' };
