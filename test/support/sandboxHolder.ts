// Runs inside `unshare --net --mount` for NetworkSandbox: sets the namespaces up, then opens
// listening sockets on request and hands them to the test over the IPC channel.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';

const [hostsFile, ...addresses] = process.argv.slice(2);
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] });
// Loopback takes any address (this kernel has no dummy interfaces): each is reachable only in here.
ip('link', 'set', 'lo', 'up');
for (const address of addresses) ip('addr', 'add', `${address}/${address.includes(':') ? 128 : 32}`, 'dev', 'lo');
execFileSync('mount', ['--bind', hostsFile, '/etc/hosts']);

process.on('message', ({ id, host, port }: { id: number; host: string; port: number }) => {
  const server = createServer();
  server.once('error', (err) => process.send!({ id, error: err.message }));
  // The test process accepts the connections; this copy of the socket is closed once sent.
  server.listen(port, host, () => process.send!({ id }, server, () => server.close()));
});
process.send!({ ready: true });
