import type { DesiredState } from './desired-state.ts';

/**
 * Where desired state comes from: a watched file now, Ground Control over MQTT later. A source
 * reports every valid document it sees and every rejected one; the engine keeps the last good.
 */
export interface DesiredStateSource {
  start(handlers: { onState: (state: DesiredState) => void; onError: (err: Error) => void }): Promise<void>;
  close(): Promise<void>;
}
