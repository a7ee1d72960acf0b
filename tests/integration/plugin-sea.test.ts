// The plugin tests (plugin.test.ts), every one of them, against the Node.js single executable that
// `npm run build:plugin` builds on Linux, run from an empty directory with no Node.js on PATH.
import { usePluginBuild } from './helpers/plugin-under-test.ts';

usePluginBuild('sea');
await import('./plugin.test.ts');
