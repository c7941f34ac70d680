import { GitHttpServer } from '../test/support/gitHttpServer';

/** Serves the bare repositories under a directory over smart HTTP on loopback until killed. */
async function main(): Promise<void> {
  const [root, port] = process.argv.slice(2);
  if (!root) throw new Error('usage: serveRepositories <project-root> [port]');
  const server = new GitHttpServer(root);
  await server.start(port ? Number(port) : 0);
  process.stdout.write(`http://127.0.0.1:${server.port}\n`);
  const stop = () => void server.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
