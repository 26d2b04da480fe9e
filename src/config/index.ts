export { loadSatelliteConfig, EXIT_CONFIG, type SatelliteConfig } from './load.ts';
export { validate, formatErrors, deepFreeze } from '../lib/validate.ts';
