// Which realip-webhook this is: `--version`, serve's first log line, the build_info metric and the
// policy output's header all say it. The bundle step (build/bundle.ts) bakes version and commit in;
// run from source (tsx), the version comes from package.json and the commit is unknown.
import { readFileSync } from 'node:fs';

declare const REALIP_VERSION: string | undefined;
declare const REALIP_REVISION: string | undefined;

export interface Build {
  version: string;
  revision: string;
  /** The Node.js release running it, as process.version says (v24.21.0). */
  node: string;
}

function sourceVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export const BUILD: Build = {
  version: typeof REALIP_VERSION === 'string' ? REALIP_VERSION : sourceVersion(),
  revision: typeof REALIP_REVISION === 'string' ? REALIP_REVISION : 'unknown',
  node: process.version,
};

/** realip-webhook 0.1.0 (revision 779103f..., Node.js v24.21.0) */
export function describeBuild(build: Build = BUILD): string {
  return `realip-webhook ${build.version} (revision ${build.revision}, Node.js ${build.node})`;
}
