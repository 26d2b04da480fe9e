// Cold-cache pulls through the satellite's pull-through proxy and through docker-registry's proxy
// mode, side by side on one upstream: bytes each reads from the upstream and wall time.
//   node --test --test-concurrency=1 bench/proxy/cold-pull.test.ts
// Figures in docs/proxy.md. Needs the Debian peers (docker-registry, containerd, skopeo) and root.
import { test } from 'node:test';
import { startSatellite } from '../../test/helpers/satellite.ts';
import { startDockerRegistry } from '../../test/helpers/docker-registry.ts';
import { startFaultProxy, type FaultProxy } from '../../test/helpers/fault-proxy.ts';
import { startContainerd, writeHostsToml } from '../../test/helpers/containerd.ts';
import { makeTempDir } from '../../test/helpers/tmp.ts';
import { freePort } from '../../test/helpers/ports.ts';
import { hostPlatform, makeImage } from '../../test/helpers/fixtures.ts';
import { skopeoCopy } from '../../test/helpers/skopeo.ts';

const MiB = 1024 * 1024;
const CLIENTS = 5;

test('cold pulls: satellite proxy vs docker-registry proxy mode', { timeout: 900_000 }, async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-bench-');
  const one = await makeImage(layout, { tag: 'one', seed: 'bench-proxy-one', layerSizes: [60 * MiB, 40 * MiB], platform: hostPlatform() });
  const many = await makeImage(layout, { tag: 'many', seed: 'bench-proxy-many', layerSizes: [60 * MiB, 40 * MiB], platform: hostPlatform() });
  await skopeoCopy(`oci:${layout}:one`, `docker://${upstream.host}/bench/one:v1`);
  await skopeoCopy(`oci:${layout}:many`, `docker://${upstream.host}/bench/many:v1`);
  const size = (img: typeof one) => img.layers.reduce((a, l) => a + l.size, 0) + img.config.length + img.manifest.length;

  const linkSat = await startFaultProxy(t, { target: upstream.host });
  const sat = await startSatellite(t, { config: { proxy: { enabled: true, upstream: { url: linkSat.url } } } });
  const linkReg = await startFaultProxy(t, { target: upstream.host });
  const reg = await startDockerRegistry(t, { proxyRemoteUrl: linkReg.url });

  const lines: string[] = [];
  for (const [name, mirror, link] of [
    ['satellite proxy', sat.host, linkSat],
    ['docker-registry proxy', reg.host, linkReg],
  ] as Array<[string, string, FaultProxy]>) {
    const hostsDir = await makeTempDir(t, 'hs-hosts-');
    await writeHostsToml(hostsDir, 'upstream.test:5000', {
      server: `http://127.0.0.1:${await freePort()}`,
      mirrors: [{ url: `http://${mirror}`, capabilities: ['pull', 'resolve'] }],
    });
    const containerd = await startContainerd(t);
    let before = link.bytesFromTarget();
    let started = Date.now();
    await containerd.pull('upstream.test:5000/bench/one:v1', { hostsDir });
    const ctrMs = Date.now() - started;
    const ctrBytes = link.bytesFromTarget() - before;
    await containerd.stop();

    before = link.bytesFromTarget();
    started = Date.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        const out = await makeTempDir(t, 'hs-bench-pull-');
        await skopeoCopy(`docker://${mirror}/bench/many:v1`, `oci:${out}:v1`, { timeoutMs: 600_000 });
      }),
    );
    const manyMs = Date.now() - started;
    const manyBytes = link.bytesFromTarget() - before;
    lines.push(
      `${name}: containerd cold pull ${(ctrBytes / size(one)).toFixed(3)}x the image from upstream in ${ctrMs} ms; ` +
        `${CLIENTS} concurrent cold skopeo pulls ${(manyBytes / size(many)).toFixed(3)}x in ${manyMs} ms`,
    );
  }
  for (const l of lines) t.diagnostic(l);
  console.log(lines.join('\n'));
});
