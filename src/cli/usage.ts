// The command lists for `satellite --help`, apart from the commands themselves: `serve` does not
// load the CLI's table and progress-bar code or the runtimes' file formats (docs/benchmarks.md, "Memory").
import { RUNTIME_NAMES } from '../runtimes/config-schema.ts';

export const ADMIN_USAGE = `  status             the running satellite: upstream, generations, images, downloads, disk, peers
  images             every stored image: repository, tag, digest, size, platforms, source, last pulled
  sync [--wait]      start a sync run now; --wait shows progress and exits 1 if an image failed
  gc [--dry-run]     collect garbage now (or say what it would free)
  verify [--repair]  re-hash every stored blob; --repair quarantines bad ones for re-sync
      --json             print the admin answer as JSON
      --socket PATH      the admin socket (default: admin.socket of the config)`;

export const ADMIN_COMMANDS = new Set(['status', 'images', 'sync', 'gc', 'verify']);

export const RUNTIME_USAGE = `  runtime show       per runtime: the files it reads and what apply would change (dry run)
  runtime apply      point the enabled runtimes at this satellite (merge, back up the originals)
  runtime revert     restore every file apply changed, byte for byte
  runtime webhook-config  the same as webhook manifests

runtime options:
  --runtime NAME     act on NAME (${RUNTIME_NAMES.join(', ')}) instead of the enabled ones; repeatable
  --root DIR         prefix every runtime path with DIR (image building, tests)
  --content          show: print the merged files`;

export const WEBHOOK_USAGE = `  webhook manifests  print the MutatingWebhookConfiguration (caBundle: the site CA) for kubectl apply -f -`;

export const BUNDLE_USAGE = `  bundle create --from URL --image REPO:TAG [--image ...] -o DIR [--username U --password-file F]
                [--part-size SIZE]
                     write a bundle (OCI layout + bundle.json) of images from a registry (upstream or satellite);
                     blobs over SIZE (default 2GiB; e.g. 100MiB) are written as parts
  bundle import PATH [--trust FILE] [--repository REPO]
                     check the bundle's signature (Ground Control's key), every digest (and image signatures,
                     if a policy applies) and import; a running satellite imports it while it serves (admin
                     socket), else the store is opened here; --trust FILE: offline import with that policy;
                     rerun to resume. PATH may be a plain OCI layout (skopeo's oci:DIR:REF; unsigned):
                     --repository names the repository of images whose ref name is a bare tag
  bundle export -o DIR (--image REPO:TAG [--image ...] | --all) [--part-size SIZE] [--key FILE]
                     write a bundle of what this satellite's store holds (the running satellite writes it,
                     else the store is opened here); --all: every tagged image, and the desired state when
                     fully applied; --key: sign with that Ed25519 private key (PEM), else unsigned`;
