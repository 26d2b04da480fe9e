/** Kept in step with package.json by the release build; read at run time without touching the disk. */
export const VERSION = '0.1.0';
