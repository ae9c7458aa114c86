// The repository root, so tests can run what a user runs from it (certs/generate.sh, src/cli.ts)
// whatever directory the test runner was started in.
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
