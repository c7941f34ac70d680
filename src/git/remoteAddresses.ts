import { LookupAddress, LookupOptions, lookup } from 'node:dns';
import { isIP } from 'node:net';
import { Unavailable } from '../errors/errors';
import { RemoteAccess } from './gitEnvironment';
import { Admission, locationOf } from './remotePolicy';

/**
 * The address checks of an access's remote policy, made where connections are made: our HTTP
 * client resolves through `lookup` on every connection; a git process is given the addresses
 * resolved (and checked) just before it starts, and connects to nothing else.
 */

/** How the access's policy admits `url` (the remote, or where it redirected); undefined without a policy. */
export function admissionOf(access: RemoteAccess, url: URL): Admission | undefined {
  if (!access.policy || url.protocol === 'file:') return undefined;
  return access.policy.admit(access.remote.display, locationOf(url));
}

/** The addresses of `host` a remote admitted public-only may connect to; PolicyRefused when there are none. */
export async function allowedAddresses(access: RemoteAccess, host: string): Promise<LookupAddress[]> {
  const policy = access.policy!;
  if (isIP(host)) {
    policy.checkAddress(access.remote.display, host, host);
    return [{ address: host, family: isIP(host) }];
  }
  const answers = await new Promise<LookupAddress[]>((resolve, reject) =>
    lookup(host, { all: true, verbatim: true }, (err, addresses) => (err ? reject(new Unavailable(`cannot resolve the host of ${access.remote.display} (${err.code ?? err.message})`)) : resolve(addresses))),
  );
  let refusal: unknown;
  const allowed = answers.filter(({ address }) => {
    try {
      policy.checkAddress(access.remote.display, host, address);
      return true;
    } catch (err) {
      refusal ??= err;
      return false;
    }
  });
  if (allowed.length === 0) throw refusal;
  return allowed;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * The checks for one HTTP request to `url`: a refused name or literal address throws at once;
 * a host name gets a `lookup` that hands the connection only addresses the policy allows.
 */
export function requestGuard(access: RemoteAccess, url: URL): { lookup?: (host: string, options: LookupOptions, callback: LookupCallback) => void } {
  if (admissionOf(access, url) !== 'public-only') return {};
  const { host } = locationOf(url);
  if (isIP(host)) {
    access.policy!.checkAddress(access.remote.display, host, host);
    return {};
  }
  return {
    lookup: (hostname, options, callback) => {
      allowedAddresses(access, hostname).then(
        (addresses) => {
          const wanted = options.family ? addresses.filter((a) => a.family === options.family) : addresses;
          if (wanted.length === 0) return callback(Object.assign(new Error(`${hostname} has no allowed IPv${options.family} address`), { code: 'ENOTFOUND' }), []);
          if (options.all) callback(null, wanted);
          else callback(null, wanted[0].address, wanted[0].family);
        },
        (err: NodeJS.ErrnoException) => callback(err, []),
      );
    },
  };
}

/**
 * The access a git process gets: for a remote admitted public-only, with the addresses it may
 * connect to, resolved and checked now (git is told to use them, and to follow no redirect).
 */
export async function pinnedAccess(access: RemoteAccess): Promise<RemoteAccess> {
  if (access.remote.transport === 'file') return access;
  const url = new URL(access.remote.url);
  if (admissionOf(access, url) !== 'public-only') return access;
  const addresses = await allowedAddresses(access, locationOf(url).host);
  return { ...access, connectTo: addresses.map((a) => a.address) };
}
