// The plugin tests (plugin.test.ts), every one of them, against the one-file build: `npm run build:plugin`'s
// bundle, run by the node on PATH from an empty directory with nothing of the checkout reachable.
import { usePluginBuild } from './helpers/plugin-under-test.ts';

usePluginBuild('bundle');
await import('./plugin.test.ts');
