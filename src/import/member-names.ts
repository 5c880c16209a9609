import { BundleError } from '../core/errors.js';

/** A bundle member's place: the image directory it belongs to and its path inside it ('' = the directory itself). */
export interface MemberName {
  image: string;
  rel: string;
}

/**
 * Splits a tar member name (`./IMAGE/sub/file`) into image and relative path. The bundle's own
 * root (`./`) gives undefined. Absolute names, `..`, empty or `.` components are refused: a
 * hostile bundle must not be able to name anything outside its one image directory.
 */
export function parseMemberName(raw: string): MemberName | undefined {
  if (raw.includes('\0')) throw new BundleError(`refusing member with a NUL byte in its name: ${JSON.stringify(raw)}`, raw);
  if (hasControlCharacter(raw)) throw new BundleError(`refusing member with a control character in its name: ${JSON.stringify(raw)}`, JSON.stringify(raw));
  if (raw.startsWith('/')) throw new BundleError(`refusing member with an absolute name: ${raw}`, raw);
  const trimmed = raw.replace(/^\.\//, '').replace(/\/+$/, '');
  if (trimmed === '' || trimmed === '.') return undefined;
  const parts = trimmed.split('/');
  for (const part of parts) {
    if (part === '..') throw new BundleError(`refusing member whose name contains '..': ${raw}`, raw);
    if (part === '' || part === '.') throw new BundleError(`refusing member with a malformed name: ${raw}`, raw);
  }
  return { image: parts[0], rel: parts.slice(1).join('/') };
}

/**
 * A control character (C0 but tab, DEL, C1) in a name: it becomes a file name and a line of
 * output, where a newline or an escape sequence could forge what the administrator reads.
 */
export function hasControlCharacter(name: string): boolean {
  return /[\u0001-\u0008\u000a-\u001f\u007f-\u009f]/.test(name);
}

/** Remembers the bundle's one image directory and refuses members of any other. */
export class ImageDirectory {
  name: string | undefined;

  /** The member's path inside the image directory, or undefined for the bundle root. */
  place(raw: string): MemberName | undefined {
    const member = parseMemberName(raw);
    if (!member) return undefined;
    if (this.name === undefined) this.name = member.image;
    else if (member.image !== this.name) {
      throw new BundleError(`member ${raw} lies outside the image directory ${this.name}/ (a bundle holds one image)`, raw);
    }
    return member;
  }
}
