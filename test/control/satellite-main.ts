/**
 * The satellite's control plane in a process of its own, so a test can kill it without a
 * DISCONNECT (SIGKILL) or stop it gracefully (SIGTERM).
 * Usage: node test/control/satellite-main.ts DATA_DIR CONTROL_CONFIG_JSON
 */
import { openSatellite, testLog } from './helpers.ts';

const [dataDir, configJson] = process.argv.slice(2);
if (!dataDir || !configJson) throw new Error('usage: satellite-main.ts DATA_DIR CONTROL_CONFIG_JSON');
const sat = await openSatellite({ after: () => undefined }, { dataDir, config: JSON.parse(configJson) as Record<string, unknown>, log: testLog('satellite-main') });
console.log(`control started ${sat.control.identity.satelliteId}`);
process.once('SIGTERM', () => {
  void sat.close().then(() => {
    console.log('control stopped');
    process.exit(0);
  });
});
