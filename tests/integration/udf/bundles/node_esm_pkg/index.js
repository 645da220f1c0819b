// A good ES module handler (index.js under "type": "module").
export async function handler(event) {
  return { echo: event, module: 'esm-package', meta: typeof import.meta.url };
}
