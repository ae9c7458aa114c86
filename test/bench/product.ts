// The webhook as shipped: modules from dist/ (what `serve` runs) rather than src/ through tsx,
// whose transform adds work to every call (a __name helper per closure). Types come from src/.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO } from './workload.js';

const fromDist = (path: string): Promise<unknown> => import(pathToFileURL(join(REPO, 'dist', path)).href);

export async function loadProduct() {
  return {
    ...((await fromDist('admission/review.js')) as typeof import('../../src/admission/review.js')),
    ...((await fromDist('admission/admit.js')) as typeof import('../../src/admission/admit.js')),
    ...((await fromDist('namespaces/file-namespace-source.js')) as typeof import('../../src/namespaces/file-namespace-source.js')),
    ...((await fromDist('server/webhook-server.js')) as typeof import('../../src/server/webhook-server.js')),
    ...((await fromDist('server/metrics.js')) as typeof import('../../src/server/metrics.js')),
  };
}

export type Product = Awaited<ReturnType<typeof loadProduct>>;
