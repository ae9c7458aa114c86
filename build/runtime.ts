// The files the runtime image carries besides dist/cli.js, worked out from the bundle itself:
// - node_modules with only the packages the bundle leaves external (and their dependencies), at
//   the lockfile's locations, so Node resolves them from dist/cli.js as it does in the repository;
// - sbom.cdx.json: npm's CycloneDX SBOM cut down to the packages the image holds, bundled or not.
//   npm sbom alone would list the whole production tree (dozens of packages the bundle never
//   reaches) and miss the dev-tree packages esbuild found and bundled.
// Usage (in the build stage, after npm run build): node build/runtime.ts dist/cli.meta.json OUT_DIR
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join, relative, sep } from 'node:path';

interface LockedPackage {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}
interface Metafile {
  outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }>; imports: { path: string; external?: boolean }[] }>;
}
interface Sbom {
  metadata: { component: { name: string } };
  components: { 'bom-ref': string; scope?: string }[];
  dependencies: { ref: string; dependsOn: string[] }[];
}

const [metafilePath, outDir] = process.argv.slice(2);
if (!metafilePath || !outDir) {
  console.error('usage: node build/runtime.ts METAFILE OUT_DIR');
  process.exit(2);
}
const rootPackage = JSON.parse(readFileSync('package.json', 'utf8')) as { name: string; version: string };
const locked = (JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, LockedPackage> }).packages;
const meta = JSON.parse(readFileSync(metafilePath, 'utf8')) as Metafile;

const NODE_MODULES = 'node_modules/';

/** "node_modules/a/node_modules/@s/p/lib/x.js" -> "node_modules/a/node_modules/@s/p" */
function packageLocation(path: string): string {
  const at = path.lastIndexOf(NODE_MODULES) + NODE_MODULES.length;
  const segments = path.slice(at).split('/');
  const name = segments[0]!.startsWith('@') ? segments.slice(0, 2).join('/') : segments[0]!;
  return path.slice(0, at) + name;
}

/** "node_modules/a/node_modules/@s/p" -> "@s/p" */
const nameOf = (location: string) => location.slice(location.lastIndexOf(NODE_MODULES) + NODE_MODULES.length);

/** Node's lookup: `name` in node_modules next to `from`, then in each enclosing node_modules. */
function resolveFrom(from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (locked[candidate]) return candidate;
    if (!dir) return undefined;
    const parent = dir.lastIndexOf('/node_modules/');
    dir = parent < 0 ? '' : dir.slice(0, parent);
  }
}

// Modules esbuild read but left out whole (a package imported only for what tree-shaking drops)
// are not in the image, so they are not counted.
const inOutput = Object.values(meta.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([path]) => path));
const bundled = new Set(inOutput.filter((p) => p.includes(NODE_MODULES)).map(packageLocation));
const imports = Object.values(meta.outputs).flatMap((o) => o.imports);
const externalNames = new Set(imports.filter((i) => i.external && !isBuiltin(i.path)).map((i) => nameOf(packageLocation(NODE_MODULES + i.path))));

// External packages and everything they load in turn. One that is not installed (ws's optional
// native helpers) is required inside try/catch by its importer; the image's test starts serve.
const shipped = new Set<string>();
const notInstalled: string[] = [];
const pending: string[] = [];
for (const name of externalNames) {
  const location = resolveFrom('', name);
  if (location) pending.push(location);
  else notInstalled.push(name);
}
while (pending.length > 0) {
  const location = pending.pop()!;
  if (shipped.has(location)) continue;
  shipped.add(location);
  const { dependencies = {}, optionalDependencies = {} } = locked[location]!;
  for (const dep of Object.keys({ ...dependencies, ...optionalDependencies })) {
    const found = resolveFrom(location, dep);
    if (found) pending.push(found);
    else if (!(dep in optionalDependencies)) throw new Error(`${location} depends on ${dep}, which package-lock.json does not hold`);
  }
}

for (const location of [...bundled, ...shipped]) {
  if (!locked[location]?.version) throw new Error(`${location} is in the bundle's inputs or loaded by it, but not in package-lock.json`);
}
mkdirSync(outDir, { recursive: true });
for (const location of shipped) {
  // Only the package's own files: a nested node_modules is copied when it is shipped itself.
  cpSync(location, join(outDir, location), { recursive: true, filter: (src) => !relative(location, src).split(sep).includes('node_modules') });
}

const rootRef = `${rootPackage.name}@${rootPackage.version}`;
const inImage = new Set([rootRef, ...[...bundled, ...shipped].map((l) => `${nameOf(l)}@${locked[l]!.version}`)]);
const sbom = JSON.parse(execFileSync('npm', ['sbom', '--sbom-format', 'cyclonedx'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as Sbom;
const listed = new Set(sbom.components.map((c) => c['bom-ref']));
const unlisted = [...inImage].filter((r) => r !== rootRef && !listed.has(r));
if (unlisted.length > 0) throw new Error(`npm sbom does not list ${unlisted.join(', ')}`);
// npm names the root after the directory it ran in (/app); everything kept is needed at run time.
sbom.metadata.component.name = rootPackage.name;
sbom.components = sbom.components.filter((c) => inImage.has(c['bom-ref'])).map((c) => ({ ...c, scope: 'required' }));
sbom.dependencies = sbom.dependencies
  .filter((d) => inImage.has(d.ref))
  .map((d) => ({ ...d, dependsOn: d.dependsOn.filter((r) => inImage.has(r)) }));
writeFileSync(join(outDir, 'sbom.cdx.json'), `${JSON.stringify(sbom, null, 2)}\n`);

const names = (set: Set<string>) => [...set].map(nameOf).sort().join(', ');
console.log(`runtime: ${bundled.size} packages bundled in dist/cli.js; node_modules: ${names(shipped) || 'none'}`);
if (notInstalled.length > 0) console.log(`runtime: external but not installed (optional): ${notInstalled.sort().join(', ')}`);
console.log(`runtime: ${join(outDir, 'sbom.cdx.json')} lists ${sbom.components.length} packages`);
