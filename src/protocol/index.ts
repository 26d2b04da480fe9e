export * from './topics.ts';
export * from './messages.ts';
export * from './registration.ts';
export { decodeMessage, encodeMessage } from './decode.ts';
export * from './desired-state.ts';
