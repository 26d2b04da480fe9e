import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { REPO_ROOT } from '../helpers/satellite.ts';

/** Every file and directory under root: relative path -> bytes ('dir' for directories). */
export async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        out.set(relative(root, full), 'dir');
        await walk(full);
      } else {
        out.set(relative(root, full), (await readFile(full)).toString('base64'));
      }
    }
  }
  await walk(root);
  return out;
}

export async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), text);
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node src/cli/satellite.ts ARGS` (the real CLI) and resolves with its exit status and output. */
export function satelliteCli(args: string[], timeoutMs = 30_000): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.SATELLITE_CONFIG;
  return new Promise((resolve) => {
    execFile(process.execPath, [join(REPO_ROOT, 'src', 'cli', 'satellite.ts'), ...args], { cwd: REPO_ROOT, env, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A Jetson-style containerd config.toml: NVIDIA runtime as the default, CRI registry table present. */
export const JETSON_CONFIG_TOML = `# containerd config as shipped with JetPack (NVIDIA container runtime by default)
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = 0

[grpc]
  address = "/run/containerd/containerd.sock"
  max_recv_message_size = 16777216

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.8"
    enable_cdi = true

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "nvidia"
      snapshotter = "overlayfs"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
          privileged_without_host_devices = false
          runtime_engine = ""
          runtime_root = ""
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
            BinaryName = "/usr/bin/nvidia-container-runtime"
            SystemdCgroup = true

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            SystemdCgroup = true

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = ""

      [plugins."io.containerd.grpc.v1.cri".registry.headers]
        X-Site = ["shop-17"]
`;

/** The same without a registry table (nvidia-ctk runtime configure output). */
export const NVIDIA_CTK_CONFIG_TOML = `version = 2

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "nvidia"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
          privileged_without_host_devices = false
          runtime_engine = ""
          runtime_root = ""
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
            BinaryName = "/usr/bin/nvidia-container-runtime"
`;

/** hosts.toml of a host the satellite does not mirror (must stay untouched). */
export const OTHER_HOSTS_TOML = `server = "https://quay.io"

[host."https://quay-mirror.site.example"]
  capabilities = ["pull", "resolve"]
`;

/** An existing hosts.toml for an upstream the satellite mirrors: its mirror stays, after the satellite. */
export const EXISTING_UPSTREAM_HOSTS_TOML = `# site mirror, set up by hand
server = "https://registry.example.com"

[host."https://registry-cache.site.example"]
  capabilities = ["pull", "resolve"]
  ca = "/etc/ssl/site-ca.pem"
`;

export const SHORTNAMES_CONF = `[aliases]
  "nginx" = "docker.io/library/nginx"
  "alpine" = "docker.io/library/alpine"
`;

export const OTHER_REGISTRIES_CONF = `[[registry]]
prefix = "quay.io"
location = "quay.io"

[[registry.mirror]]
location = "quay-mirror.site.example"
`;

/** daemon.json with 4-space indentation, a log driver and a mirror of its own. */
export const DAEMON_JSON = `{
    "log-driver": "json-file",
    "log-opts": {
        "max-size": "10m",
        "max-file": "3"
    },
    "exec-opts": ["native.cgroupdriver=systemd"],
    "registry-mirrors": ["https://mirror.gcr.io"],
    "runtimes": {
        "nvidia": { "path": "nvidia-container-runtime", "args": [] }
    },
    "default-runtime": "nvidia"
}
`;

export const REGISTRIES_YAML = `# registries for this site (k3s)
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.site.example" # the site's pull-through cache
  quay.io:
    endpoint:
      - "https://quay-mirror.site.example"
configs:
  "registry.example.com":
    auth:
      username: robot$edge
      password: s3cret
  "mirror.site.example":
    tls:
      ca_file: /etc/ssl/site-ca.pem
`;
