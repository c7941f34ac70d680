import { BlockList, isIP } from 'node:net';
import { InvalidArgument, PolicyRefused } from '../errors/errors';
import { redact } from '../log/redact';

/** Where a remote is: its host as in the URL (lower case, IPv6 without brackets), port and path. */
export interface RemoteLocation {
  host: string;
  port: number;
  path: string;
}

/** How a remote passed the name rules: named outright (any address), or only under `*` (public addresses only). */
export type Admission = 'by-name' | 'public-only';

interface Pattern {
  text: string;
  /** A host, "*.domain" (the domain's subdomains) or "*" (any host). */
  host: string;
  port?: number;
  /** "/acme": the path /acme and everything under it. */
  pathPrefix?: string;
}

interface Range {
  subnet: string;
  prefix: number;
  why: string;
}

interface RefusedRange extends Range {
  addresses: BlockList;
}

/** Addresses no volume reaches unless its remote is allowed by name: this node, its cloud and its networks. */
const NON_PUBLIC: Range[] = [
  { subnet: '0.0.0.0', prefix: 8, why: 'a "this network" address' },
  { subnet: '127.0.0.0', prefix: 8, why: 'a loopback address' },
  { subnet: '169.254.0.0', prefix: 16, why: 'a link-local address (cloud metadata endpoints live here)' },
  { subnet: '10.0.0.0', prefix: 8, why: 'a private address' },
  { subnet: '172.16.0.0', prefix: 12, why: 'a private address' },
  { subnet: '192.168.0.0', prefix: 16, why: 'a private address' },
  { subnet: '100.64.0.0', prefix: 10, why: 'a shared (carrier-grade NAT) address' },
  { subnet: '192.0.0.0', prefix: 24, why: 'an IETF protocol address' },
  { subnet: '198.18.0.0', prefix: 15, why: 'a benchmarking address' },
  { subnet: '224.0.0.0', prefix: 4, why: 'a multicast address' },
  { subnet: '240.0.0.0', prefix: 4, why: 'a reserved address' },
  { subnet: '::', prefix: 128, why: 'the unspecified address' },
  { subnet: '::1', prefix: 128, why: 'a loopback address' },
  { subnet: 'fe80::', prefix: 10, why: 'a link-local address (cloud metadata endpoints live here)' },
  { subnet: 'fc00::', prefix: 7, why: 'a private (unique local) address' },
  { subnet: 'ff00::', prefix: 8, why: 'a multicast address' },
];

const DEFAULT_PORTS: Record<string, number> = { 'https:': 443, 'http:': 80, 'ssh:': 22 };

/**
 * Which remotes the volumes of a node may name, and which addresses they may reach. A remote
 * passes by name when an `--allow-remote` pattern matches it, and may then connect anywhere;
 * `*` lets any other remote through on condition that every address it connects to is public
 * (not loopback, link-local, private, nor a range given with `--refuse-cidr`). The addresses are
 * checked where connections are made: RemoteLookup for ours, pinned for git's.
 */
export class RemotePolicy {
  private constructor(
    private readonly patterns: Pattern[],
    private readonly refused: RefusedRange[],
  ) {}

  /** Everything public: what a node plugin allows when given no patterns. */
  static readonly DEFAULT_PATTERNS = ['*'];

  static parse(allow: string[], refuseCidrs: string[] = []): RemotePolicy {
    const patterns = allow.map(parsePattern);
    const refused = [...NON_PUBLIC, ...refuseCidrs.map(parseCidr)].map((range) => {
      const addresses = new BlockList();
      addresses.addSubnet(range.subnet, range.prefix, familyOf(range.subnet));
      return { ...range, addresses };
    });
    return new RemotePolicy(patterns, refused);
  }

  /** "github.com/acme, *": the patterns, for messages and the start-up log. */
  get description(): string {
    return this.patterns.map((p) => p.text).join(', ');
  }

  /** Whether the remote's name passes; throws PolicyRefused naming the patterns when it does not. */
  admit(remote: string, location: RemoteLocation): Admission {
    let anyHost = false;
    for (const pattern of this.patterns) {
      if (!matchesPlace(pattern, location)) continue;
      if (pattern.host !== '*') return 'by-name';
      anyHost = true;
    }
    if (anyHost) return 'public-only';
    throw new PolicyRefused(remote, `it matches none of the remotes this node allows (--allow-remote ${this.description})`);
  }

  /** Throws PolicyRefused when a remote admitted public-only may not connect to `address`. */
  checkAddress(remote: string, host: string, address: string): void {
    const range = this.refused.find((r) => r.addresses.check(address, familyOf(address)));
    if (!range) return;
    const named = host === address ? address : `${host} (${address})`;
    throw new PolicyRefused(remote, `${named} is ${range.why}; a volume reaches it only when the node allows the remote by name (--allow-remote ${host})`);
  }
}

/** Host, port and path of an http(s) or ssh URL, as the policy compares them. */
export function locationOf(url: URL): RemoteLocation {
  const host = url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return { host, port: url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol] ?? 0, path: decodeURIComponent(url.pathname) };
}

function matchesPlace(pattern: Pattern, location: RemoteLocation): boolean {
  if (pattern.port !== undefined && pattern.port !== location.port) return false;
  if (pattern.pathPrefix !== undefined) {
    const path = location.path.replace(/\/+$/, '');
    if (path !== pattern.pathPrefix && !path.startsWith(`${pattern.pathPrefix}/`)) return false;
  }
  if (pattern.host === '*') return true;
  if (pattern.host.startsWith('*.')) return location.host.endsWith(pattern.host.slice(1));
  return location.host === pattern.host;
}

const PATTERN = /^(\*|\*\.[a-z0-9.-]+|\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?(\/.*)?$/;

function parsePattern(raw: string): Pattern {
  const text = raw.trim();
  const match = PATTERN.exec(text.toLowerCase());
  const expected = 'expected a host name or address, optionally with :port and a /path prefix (github.com, git.internal:8443/team, 10.0.0.5, [fd00::5], *.example.com or *)';
  if (!match || text.includes('://')) throw new InvalidArgument('--allow-remote', `"${redact(text)}" is not a remote pattern; ${expected}`);
  const [, host, port, path] = match;
  const pathPrefix = path?.replace(/\/+$/, '');
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw new InvalidArgument('--allow-remote', `"${text}" has port ${port}; expected 1-65535`);
  return { text, host: host.replace(/^\[(.*)\]$/, '$1'), port: port === undefined ? undefined : Number(port), pathPrefix: pathPrefix || undefined };
}

function parseCidr(text: string): Range {
  const [subnet, bits, ...rest] = text.trim().split('/');
  const family = isIP(subnet);
  const prefix = Number(bits);
  if (!family || rest.length > 0 || !/^\d+$/.test(bits ?? '') || prefix > (family === 6 ? 128 : 32)) {
    throw new InvalidArgument('--refuse-cidr', `"${text}" is not a CIDR range; expected an address and a prefix length, such as 10.96.0.0/12 or fd00:10:96::/112`);
  }
  return { subnet, prefix, why: `in ${subnet}/${prefix}, a range this node refuses (--refuse-cidr)` };
}

function familyOf(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}
