import {
  AccessDenied,
  AuthenticationRequired,
  GitfsError,
  RepositoryNotFound,
  Timeout,
  TransientTransportError,
  Unavailable,
} from '../errors/errors';
import { redact } from '../log/redact';

/** What the failing git command was talking to, for the error message. */
export interface FailureContext {
  repository: string;
  credentialsOffered: boolean;
  command: string;
}

const RULES: Array<[RegExp, (c: FailureContext, detail: string) => GitfsError]> = [
  [/could not resolve host|name or service not known|temporary failure in name resolution|could not resolve hostname/i,
    (c, d) => new Unavailable(`cannot resolve the host of ${c.repository}: ${d}`)],
  [/connection refused|couldn't connect to server|failed to connect to/i,
    (c, d) => new Unavailable(`cannot connect to ${c.repository}: ${d}`)],
  [/network is unreachable|no route to host/i,
    (c, d) => new Unavailable(`network unreachable for ${c.repository}: ${d}`)],
  // Asked for credentials, or refused them: which one depends on whether any were offered.
  [/terminal prompts disabled|could not read (username|password)|authentication (required|failed)|http (basic|negotiate): access denied|requested url returned error: 40[13]|permission denied \(publickey|access denied|host key verification failed/i,
    (c) => (c.credentialsOffered ? new AccessDenied(c.repository) : new AuthenticationRequired(c.repository))],
  [/repository .* not found|does not appear to be a git repository|requested url returned error: 404|no such repository|not a git repository/i,
    (c) => new RepositoryNotFound(c.repository)],
  [/requested url returned error: 5\d\d|early eof|connection reset|unexpected disconnect|the remote end hung up|rpc failed|transfer closed|gnutls_handshake|curl \d+ |broken pipe|operation timed out|unable to create '[^']*\.lock'/i,
    (c, d) => new TransientTransportError(`transfer from ${c.repository} failed (${c.command}): ${d}`)],
];

/** Turns a failed git command into the typed error its stderr describes. */
export function classifyGitFailure(stderr: string, exitCode: number | null, context: FailureContext): GitfsError {
  const detail = summarize(stderr) || `exit code ${exitCode}`;
  for (const [pattern, make] of RULES) {
    if (pattern.test(stderr)) return make(context, detail);
  }
  return new GitfsError('internal', `git ${context.command} failed for ${context.repository}: ${detail}`);
}

export function timeoutFailure(context: FailureContext, timeoutMs: number): GitfsError {
  return new Timeout(`git ${context.command} for ${context.repository} did not finish within ${timeoutMs} ms`);
}

/** The meaningful lines of git's stderr, redacted and shortened for one log line. */
function summarize(stderr: string): string {
  const lines = redact(stderr)
    .split('\n')
    .map((l) => l.replace(/^(fatal|error|remote|warning): /, '').trim())
    .filter((l) => l !== '' && !/^(hint:|please make sure|and the repository exists)/i.test(l));
  return lines.slice(-3).join('; ').slice(0, 400);
}
