// The bundle step of `npm run build`: src/cli.ts and the packages it uses as one ES module,
// dist/cli.js, with the version and the git commit baked in (src/version.ts reads them), and its
// metafile beside it for build/runtime.ts.
//   node build/bundle.ts [OUT_FILE]     (default dist/cli.js; REALIP_REVISION overrides the commit)
import { writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import { buildInfo } from './build-info.ts';

const outfile = process.argv[2] ?? 'dist/cli.js';
const { version, revision } = buildInfo('.');

const result = await build({
  entryPoints: ['src/cli.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'esm',
  sourcemap: true,
  metafile: true,
  // node-fetch stays external: bundled, its url.parse() draws deprecation warnings (docs/image.md).
  external: ['node-fetch'],
  logLevel: 'warning',
  // Packages written for CommonJS call require(); an ES module has none of its own.
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  define: { REALIP_VERSION: JSON.stringify(version), REALIP_REVISION: JSON.stringify(revision) },
});
writeFileSync(outfile.replace(/\.js$/, '.meta.json'), JSON.stringify(result.metafile));
