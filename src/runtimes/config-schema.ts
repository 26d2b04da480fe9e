/**
 * The `runtimes` section of the satellite config: which container runtimes on this host are
 * pointed at the satellite by `satellite runtime apply` (or at start with `applyOnStart`), the
 * mirror URL they are given and the files they read. See docs/runtimes.md.
 */
const hostPattern = '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$';
const baseUrlPattern = '^https?://[^\\s/]+/?$';
const path = { type: 'string', minLength: 1 } as const;

export const runtimesConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    /** Apply the runtime configuration when the daemon starts (errors are logged, not fatal). */
    applyOnStart: { type: 'boolean', default: false },
    /** The URL runtimes use to reach this satellite; default from registry.listen and registry.tls. */
    mirrorUrl: { type: 'string', pattern: baseUrlPattern },
    /** PEM CA the runtimes trust for an HTTPS mirror; absent with TLS = certificate not verified. */
    caFile: path,
    /** Registry hosts to mirror (`host[:port]`, as in image references), or `{ host, server }` to
     * override where the runtime falls back to (default https://<host>; docker.io -> registry-1.docker.io). */
    upstreams: {
      type: 'array',
      maxItems: 64,
      items: {
        anyOf: [
          { type: 'string', pattern: hostPattern },
          {
            type: 'object',
            additionalProperties: false,
            required: ['host'],
            properties: { host: { type: 'string', pattern: hostPattern }, server: { type: 'string', pattern: baseUrlPattern } },
          },
        ],
      },
    },
    /** containerd >= 1.7 `dial_timeout` for the mirror (1.6 waits up to 30 s on an unreachable host). */
    dialTimeout: { type: 'string', pattern: '^[0-9]{1,4}(ms|s)$', default: '2s' },
    /** Manifest and backups of the files changed; default <dataDir>/runtimes. */
    stateDir: path,
    containerd: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false },
        certsDir: { ...path, default: '/etc/containerd/certs.d' },
        configToml: { ...path, default: '/etc/containerd/config.toml' },
        /** Also set the CRI plugin's registry `config_path` in configToml to certsDir. */
        setConfigPath: { type: 'boolean', default: false },
      },
    },
    /** CRI-O and podman (containers-registries.conf.d). */
    crio: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false },
        dropInFile: { ...path, default: '/etc/containers/registries.conf.d/50-harbor-satellite.conf' },
      },
    },
    docker: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false },
        daemonJson: { ...path, default: '/etc/docker/daemon.json' },
      },
    },
    /**
     * The HTTPS proxy route (docker, containerd): a systemd drop-in setting HTTPS_PROXY/NO_PROXY for
     * their units, and the site CA in docker's certs.d for each httpsProxy.intercept host.
     */
    httpsProxy: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false },
        /** HTTPS_PROXY for the runtimes; default http://<httpsProxy.listen> (127.0.0.1 for 0.0.0.0). */
        url: { type: 'string', pattern: '^http://[^\\s/]+/?$' },
        noProxy: { type: 'array', maxItems: 64, items: { type: 'string', pattern: '^[^\\s,"]+$' }, default: ['localhost', '127.0.0.1', '::1'] },
        systemdDir: { ...path, default: '/etc/systemd/system' },
        dockerCertsDir: { ...path, default: '/etc/docker/certs.d' },
      },
    },
    /** k3s and rke2 (rke2: /etc/rancher/rke2/registries.yaml). */
    k3s: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false },
        registriesYaml: { ...path, default: '/etc/rancher/k3s/registries.yaml' },
      },
    },
  },
} as const;

export type UpstreamEntry = string | { host: string; server?: string };

export interface RuntimesConfig {
  applyOnStart: boolean;
  mirrorUrl?: string;
  caFile?: string;
  upstreams?: UpstreamEntry[];
  dialTimeout: string;
  stateDir?: string;
  containerd: { enabled: boolean; certsDir: string; configToml: string; setConfigPath: boolean };
  crio: { enabled: boolean; dropInFile: string };
  docker: { enabled: boolean; daemonJson: string };
  k3s: { enabled: boolean; registriesYaml: string };
  httpsProxy: { enabled: boolean; url?: string; noProxy: string[]; systemdDir: string; dockerCertsDir: string };
}

export const RUNTIME_NAMES = ['containerd', 'crio', 'docker', 'k3s'] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

/** Resolves the section's relative paths (against the config file's directory, like every path). */
export function resolveRuntimePaths(r: RuntimesConfig, abs: (p: string) => string): void {
  if (r.caFile) r.caFile = abs(r.caFile);
  if (r.stateDir) r.stateDir = abs(r.stateDir);
  r.containerd.certsDir = abs(r.containerd.certsDir);
  r.containerd.configToml = abs(r.containerd.configToml);
  r.crio.dropInFile = abs(r.crio.dropInFile);
  r.docker.daemonJson = abs(r.docker.daemonJson);
  r.k3s.registriesYaml = abs(r.k3s.registriesYaml);
  r.httpsProxy.systemdDir = abs(r.httpsProxy.systemdDir);
  r.httpsProxy.dockerCertsDir = abs(r.httpsProxy.dockerCertsDir);
}
