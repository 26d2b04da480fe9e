export * from './scripts/release/index.ts';
