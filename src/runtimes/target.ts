import type { RuntimeName } from './config-schema.ts';

/** One file a runtime reads, and how to merge the satellite's settings into its current text. */
export interface TargetFile {
  runtime: RuntimeName;
  /** Absolute path as the runtime sees it (before any --root prefix). */
  path: string;
  /**
   * The file's new text given its current text (undefined = absent). Pure and idempotent:
   * render(render(x)) === render(x). Throws RUNTIME_FILE_INVALID for a malformed file, naming
   * `file` (the path on disk).
   */
  render(current: string | undefined, file: string): string;
}

/** What one runtime needs: its files, and warnings to show the operator. */
export interface RuntimeTargets {
  runtime: RuntimeName;
  files: TargetFile[];
  warnings: string[];
}
