import fs from 'node:fs';
import path from 'node:path';
import type { Locations } from '../core/locations.js';

export type ProfileKind = 'install' | 'netboot';

export interface ProfileImage {
  profile: string;
  osvers: string;
  osarch: string;
}

/**
 * xCAT's lookup of a template or list file the tables leave empty (xcat-bundle-format.md
 * section 4): in INSTALLDIR/custom/KIND, then XCATROOT/share/xcat/KIND, the distro directory is
 * the longest prefix of osvers that exists there; in it the first existing of
 * PROFILE.OSVERS.ARCH.EXT, PROFILE.OSVERS.EXT, PROFILE.ARCH.EXT, PROFILE.EXT.
 * Returns the logical path found, or undefined.
 */
export function findProfileFile(loc: Locations, kind: ProfileKind, ext: string, image: ProfileImage): string | undefined {
  const exists = (logical: string, dir: boolean): boolean => {
    const stat = fs.statSync(loc.sandbox.real(logical), { throwIfNoEntry: false });
    return stat !== undefined && (dir ? stat.isDirectory() : stat.isFile());
  };
  for (const base of [path.posix.join(loc.installdir, 'custom', kind), path.posix.join(loc.xcatroot, 'share/xcat', kind)]) {
    const distroDir = distroDirectory(base, image.osvers, (dir) => exists(dir, true));
    if (!distroDir) continue;
    const found = candidateNames(ext, image)
      .map((name) => path.posix.join(distroDir, name))
      .find((file) => exists(file, false));
    if (found) return found;
  }
  return undefined;
}

/** BASE/PREFIX for the longest prefix of osvers that exists (`rhels8.5.0` ... `rh`). */
function distroDirectory(base: string, osvers: string, isDir: (dir: string) => boolean): string | undefined {
  for (let length = osvers.length; length > 0; length--) {
    const dir = path.posix.join(base, osvers.slice(0, length));
    if (isDir(dir)) return dir;
  }
  return undefined;
}

/** The file names tried, most specific first. */
function candidateNames(ext: string, { profile, osvers, osarch }: ProfileImage): string[] {
  return [`${profile}.${osvers}.${osarch}.${ext}`, `${profile}.${osvers}.${ext}`, `${profile}.${osarch}.${ext}`, `${profile}.${ext}`];
}
