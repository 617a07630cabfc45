// Entry point of an analysis worker thread (see analysis-pool.ts), plain JavaScript for the same
// reason as worker.mjs: it starts whatever the parent runs under (node --import tsx, or vitest).
try {
  await import('./analysis-worker.ts');
} catch (err) {
  if (err?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
  const { tsImport } = await import('tsx/esm/api');
  await tsImport('./analysis-worker.ts', import.meta.url);
}
