// Entry point of a classifier worker thread (see pool.ts). Plain JavaScript so that it starts
// whatever the parent runs under: `node --import tsx` (a TypeScript loader is already registered:
// the .ts module imports directly) or vitest, whose transform does not reach worker threads
// (tsx's API is then used to import the TypeScript module).
try {
  await import('./worker.ts');
} catch (err) {
  if (err?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
  const { tsImport } = await import('tsx/esm/api');
  await tsImport('./worker.ts', import.meta.url);
}
