/**
 * An MQTT broker URL as MQTT.js connection options, parsed with the WHATWG URL API. Passing the
 * URL string to `mqtt.connect` makes MQTT.js call the legacy `url.parse()`, which Node 24 reports
 * with a DEP0169 deprecation warning at every start.
 */
export function mqttUrlOptions(url: string): { protocol: 'mqtt' | 'mqtts' | 'tcp' | 'ssl' | 'ws' | 'wss'; host: string; port?: number; path?: string } {
  const u = new URL(url);
  const protocol = u.protocol.replace(/:$/, '') as 'mqtt' | 'mqtts' | 'tcp' | 'ssl' | 'ws' | 'wss';
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    protocol,
    host,
    ...(u.port ? { port: Number(u.port) } : {}),
    ...(protocol === 'ws' || protocol === 'wss' ? { path: `${u.pathname}${u.search}` } : {}),
  };
}
