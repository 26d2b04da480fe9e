/** Ground Control: the fleet's control plane (HTTP API, MQTT broker or link, LMDB state). */
export { startGroundControl, type GroundControlRuntime } from './daemon.ts';
export { loadGroundControlConfig, groundControlConfigSchema, EXIT_CONFIG, type GroundControlConfig } from './config.ts';
export { createGcLogger } from './logger.ts';
export { createAdminToken } from './admin-tokens.ts';
export { openGcDb } from './db/db.ts';
export { desiredForBundle } from './fleet/bundle-desired.ts';
export { loadBundleKey, BUNDLE_KEY_FILE } from './bundle-key.ts';
export { mosquittoAcl, mosquittoFleetSettings } from './broker/mosquitto.ts';
export * from './client.ts';
