export declare const ENTRY_POINTS: Record<string, string>;
export declare const EXTERNAL: string[];
export declare function bundle(outdir?: string): Promise<{ outdir: string; version: string; outputs: string[] }>;
