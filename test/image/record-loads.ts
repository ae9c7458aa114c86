// Given to the image's node with --import: at exit, prints every module file the process loaded
// (import and require alike) as one JSON line on stderr, for the test that the image carries no
// package the webhook does not load. Node strips the types itself: the image has no tsx.
import { writeSync } from 'node:fs';
import { registerHooks } from 'node:module';

const loaded = new Set<string>();
registerHooks({
  load(url, context, nextLoad) {
    loaded.add(url);
    return nextLoad(url, context);
  },
});
process.on('exit', () => writeSync(2, `${JSON.stringify({ loadedModules: [...loaded] })}\n`));
