import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSatellite } from '../helpers/satellite.ts';
import { startBroker } from '../control/broker.ts';
import { metricsUrl, promtoolCheck, scrape, scrapeUntil, value } from './helpers.ts';

const P = 'harbor_satellite_';

test('control metrics follow the MQTT connection, the outbox and the last acknowledged report', async (t) => {
  const broker = await startBroker(t, { persistence: false });
  const sat = await startSatellite(t, {
    config: { control: { satelliteId: 'sat-metrics', mqtt: { url: broker.url }, reconnectMinMs: 100, reconnectMaxMs: 400, reportIntervalSeconds: 3600 } },
  });
  const url = await metricsUrl(sat);

  // Connected, and the report sent on connect was acknowledged by the broker: the outbox is empty.
  const up = await scrapeUntil(url, (m) => m.get(`${P}control_connected`) === 1 && m.get(`${P}control_outbox_messages`) === 0 && (m.get(`${P}control_last_report_age_seconds`) ?? 1e9) < 30);
  assert.equal(value(up, `${P}control_connected`), 1);
  assert.equal(value(up, `${P}control_outbox_messages`), 0);
  assert.ok(value(up, `${P}control_last_report_age_seconds`) < 30);
  await promtoolCheck(await scrape(url));

  // The broker goes away: the satellite says so, and the report age keeps growing.
  await broker.stop();
  const down = await scrapeUntil(url, (m) => m.get(`${P}control_connected`) === 0);
  assert.equal(value(down, `${P}control_connected`), 0);
  await new Promise((r) => setTimeout(r, 1100));
  const later = await scrapeUntil(url, () => true);
  assert.ok(value(later, `${P}control_last_report_age_seconds`) >= value(down, `${P}control_last_report_age_seconds`) + 1, 'no report is acknowledged while the broker is down');

  // Back: reconnected, counted.
  await broker.start();
  const again = await scrapeUntil(url, (m) => m.get(`${P}control_connected`) === 1 && (m.get(`${P}control_reconnects_total`) ?? 0) >= 1);
  assert.equal(value(again, `${P}control_connected`), 1);
  assert.ok(value(again, `${P}control_reconnects_total`) >= 1);
});
