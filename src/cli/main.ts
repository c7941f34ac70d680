#!/usr/bin/env node
import { redact } from '../log/redact';
import { PACKAGE_VERSION } from './driverDefaults';

interface Command {
  run(args: string[]): Promise<number>;
  usage: string;
}

/** Each command's module is loaded only when it runs: `gitfs-csi mount` does not pay for the CSI server's start-up. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  mount: () => import('./mountCommand').then((m) => ({ run: m.mountCommand, usage: m.MOUNT_USAGE })),
  node: () => import('./nodeCommand').then((m) => ({ run: m.nodeCommand, usage: m.NODE_USAGE })),
  controller: () => import('./controllerCommand').then((m) => ({ run: m.controllerCommand, usage: m.CONTROLLER_USAGE })),
  'fuse-holder': () => import('./fuseHolderCommand').then((m) => ({ run: m.fuseHolderCommand, usage: m.FUSE_HOLDER_USAGE })),
  status: () => import('./statusCommand').then((m) => ({ run: m.statusCommand, usage: m.STATUS_USAGE })),
};

const SUMMARY = `usage: gitfs-csi <command> [options]

commands:
  mount       mount a git repository (read-only or writable, with its .git) with lazily fetched contents
  node        serve the CSI node plugin (Identity + Node, optionally Controller)
  status      what the node plugin running here holds: tree mounts, volumes, cache, stores
  version     print gitfs-csi's version (also --version)
  controller  serve the CSI controller plugin (Identity + Controller)
  fuse-holder keep a node's FUSE connections open across node plugin restarts`;

/** The summary and every command's usage (loading every command: only for help and mistakes). */
async function fullUsage(): Promise<string> {
  const usages = await Promise.all(Object.values(COMMANDS).map(async (load) => (await load()).usage));
  return [SUMMARY, ...usages].join('\n\n');
}

/** The named command's loader, or undefined for anything else (`toString` included). */
function commandNamed(name: string | undefined): (() => Promise<Command>) | undefined {
  return name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const load = commandNamed(command);
  if (load) return (await load()).run(rest);
  switch (command) {
    case '--version':
    case '-V':
    case 'version':
      process.stdout.write(`gitfs-csi ${PACKAGE_VERSION}\n`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${await fullUsage()}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`gitfs-csi: unknown command "${redact(command)}"\n\n${await fullUsage()}\n`);
      return 2;
  }
}

/** Node's own words for a flag it could not parse, said plainly, with the command's usage after them. */
async function describeBadFlags(command: string, err: Error & { code: string }): Promise<string> {
  const unknown = /^Unknown option '([^']*)'/.exec(err.message);
  const what = unknown ? `unknown option ${unknown[1]}` : err.message.replace(/\.$/, '');
  const load = commandNamed(command);
  const usage = load ? (await load()).usage : await fullUsage();
  return `gitfs-csi ${command}: ${what}\n\n${usage}`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (err) => {
    const parseError = err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS');
    const failure = parseError ? await describeBadFlags(process.argv[2], err as Error & { code: string }) : `gitfs-csi: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`${redact(failure)}\n`);
    const badArguments = parseError || (err && typeof err === 'object' && 'kind' in err && err.kind === 'invalid-argument');
    process.exit(badArguments ? 2 : 1);
  },
);
