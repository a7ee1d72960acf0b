// Entry point of the `kubectl-vault` executable (bin/kubectl-vault runs this file, or its build in dist/; the
// one-file build bundles it, see scripts/build-plugin.ts).
// Only process glue lives here: the CLI itself is cli.ts.
import fs from 'node:fs';

/** package.json's engines.node: older releases fail deep inside the HTTP client with a confusing error. */
const MIN_NODE: readonly [number, number] = [22, 19];

// `kubectl vault get dar | head -1` closes the pipe early: that is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

/** Runs the CLI; a plain function rather than top-level await, so the one-file build can also be CommonJS (a
 * Node single-executable application runs a CommonJS script). */
async function main(): Promise<void> {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
    process.stderr.write(
      `error: kubectl vault needs Node.js ${MIN_NODE.join('.')} or newer; ${process.execPath} is ${process.version}\n`,
    );
    process.exitCode = 1;
    return;
  }
  try {
    const { defaultConnect, run } = await import('./cli.ts');
    process.exitCode = await run(process.argv.slice(2), {
      stdout: (text) => void process.stdout.write(text),
      stderr: (text) => void process.stderr.write(text),
      readStdin: () => fs.readFileSync(0, 'utf8'),
      env: process.env,
      now: () => new Date(),
      connect: defaultConnect(process.env),
    });
  } catch (err) {
    // A bug, not a refusal: still one line, no stack trace.
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

void main();
