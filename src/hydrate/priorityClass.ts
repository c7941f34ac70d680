import { Priority } from './blobSource';

const MANIFESTS = new Set([
  'package.json', 'package-lock.json', 'go.mod', 'go.sum', 'cargo.toml', 'cargo.lock', 'pyproject.toml',
  'requirements.txt', 'setup.py', 'setup.cfg', 'pom.xml', 'build.gradle', 'gemfile', 'makefile',
  'dockerfile', 'readme', 'readme.md', 'license', 'tsconfig.json', '.gitignore', '.gitattributes',
]);
const BINARY = /\.(png|jpe?g|gif|webp|ico|pdf|zip|gz|tgz|bz2|xz|zst|7z|jar|war|so|dylib|dll|exe|bin|o|a|class|wasm|mp[34]|mov|avi|woff2?|ttf|otf|psd|iso|dmg|pyc)$/i;

/** How urgent a prefetch of this file is, from its name alone. */
export function priorityClassOf(name: string): Priority {
  const lower = name.toLowerCase();
  if (MANIFESTS.has(lower) || lower.startsWith('readme')) return Priority.Manifest;
  if (BINARY.test(lower)) return Priority.Binary;
  return Priority.Source;
}
