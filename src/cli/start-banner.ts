import type { AddressInfo } from 'node:net';

/**
 * What a person who just ran `npm start` (or `satellite serve`) in a terminal wants to see among
 * the JSON log lines: where the registry is and two commands to try next. Printed on stderr, and
 * only to a terminal: journald and pipes get the log alone.
 */
export function startBanner(opts: { address: AddressInfo; tls: boolean; configFile: string | undefined; dataDir: string; viaNpm: boolean; socket: string; overridden: boolean }): string {
  const host = opts.address.address === '0.0.0.0' || opts.address.address === '::' ? '127.0.0.1' : opts.address.address;
  const where = `${host.includes(':') ? `[${host}]` : host}:${opts.address.port}`;
  const scheme = opts.tls ? 'https' : 'http';
  const insecure = opts.tls ? '' : ' --dest-tls-verify=false';
  // The CLI must find the same socket: the same config, or the socket itself when flags moved it.
  const config = opts.overridden ? ` --socket ${opts.socket}` : opts.configFile ? ` --config ${opts.configFile}` : '';
  const cli = opts.viaNpm ? `npm run satellite -- status${config}` : `satellite status${config}`;
  return [
    '',
    `Harbor Satellite: registry on ${scheme}://${opts.address.address}:${opts.address.port} (data in ${opts.dataDir})`,
    'Next:',
    `  push an image:  skopeo copy${insecure} oci:./my-image:latest docker://${where}/demo/app:1`,
    `  pull it back:   skopeo copy${opts.tls ? '' : ' --src-tls-verify=false'} docker://${where}/demo/app:1 oci:./pulled:latest`,
    `  see the state:  ${cli}`,
    '',
  ].join('\n');
}
