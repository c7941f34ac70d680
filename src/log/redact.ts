/**
 * Removes secrets from text that may reach a log line or an error message:
 * userinfo in URLs, HTTP authorization headers and common token shapes.
 */

const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi;
const AUTH_HEADER = /(authorization:\s*)(basic|bearer|token)\s+\S+/gi;
const TOKEN_SHAPES = /\b(gh[pousr]_[A-Za-z0-9]{20,}|glpat-[A-Za-z0-9_-]{20,}|github_pat_[A-Za-z0-9_]{20,})\b/g;

export function redact(text: string): string {
  return text
    .replace(URL_USERINFO, '$1***@')
    .replace(AUTH_HEADER, '$1$2 ***')
    .replace(TOKEN_SHAPES, '***');
}
